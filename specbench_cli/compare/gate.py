"""Gate files for `specbench compare --config gate.yaml`: thresholds and options in YAML.

    thresholds: {speedup: 5%, mean_accepted_tokens: 0%}
    allow_config_diff: false      # optional
    format: markdown              # optional: table | markdown | json
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from specbench_cli.compare.metrics import parse_threshold
from specbench_cli.errors import BadInput
from specbench_cli.yaml_file import read_yaml

GATE_KEYS = ("thresholds", "allow_config_diff", "format")


@dataclass(frozen=True)
class GateFile:
    """The settings of a gate file."""

    thresholds: dict[str, float]
    allow_config_diff: bool = False
    format: str | None = None


def read_gate_file(path: Path, formats: Sequence[str]) -> GateFile:
    """Read and check a gate file: known keys only, thresholds as `METRIC: PCT%`, `format` one
    of `formats`."""
    data = read_yaml(path)
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a mapping with keys {', '.join(GATE_KEYS)}")
    for key in data:
        if key not in GATE_KEYS:
            raise BadInput(f"{path}: unknown key {key!r} (known: {', '.join(GATE_KEYS)})")
    thresholds = data.get("thresholds") or {}
    if not isinstance(thresholds, dict):
        raise BadInput(f"{path}: 'thresholds' must map metric names to percentages")
    allow = data.get("allow_config_diff", False)
    if not isinstance(allow, bool):
        raise BadInput(f"{path}: 'allow_config_diff' must be true or false")
    fmt = data.get("format")
    if fmt is not None and (not isinstance(fmt, str) or fmt not in formats):
        raise BadInput(f"{path}: 'format' must be one of {', '.join(formats)}")
    try:
        parsed = dict(parse_threshold(f"{metric}={pct}") for metric, pct in thresholds.items())
    except BadInput as exc:
        raise BadInput(f"{path}: {exc}") from None
    return GateFile(parsed, allow, fmt)
