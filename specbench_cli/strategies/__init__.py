"""Acceptance strategies: the registry and the public API the engine and CLI use.

Owns name -> class lookup (lazy "module:Class" strings, so listing names never imports torch),
construction with parameter checks, and the CLI spec form `name` or `name:key=value,...`. The
rules live one per module; the shared driver, noise and result types live in `base.py`.

    >>> s = parse_strategy_spec("cactus:delta=0.5")
    >>> s.label
    'cactus:delta=0.5'
    >>> r = s.verify(target_probs, draft_probs, draft_tokens, torch.Generator().manual_seed(0))
"""

from __future__ import annotations

import importlib
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Noise, Strategy, VerifyResult, verify_with_noise

__all__ = [
    "Noise",
    "Strategy",
    "VerifyResult",
    "available_strategies",
    "get_strategy",
    "parse_strategy_spec",
    "strategy_class",
    "verify_with_noise",
]

_REGISTRY = {
    "cactus": "specbench_cli.strategies.cactus:Cactus",
    "greedy": "specbench_cli.strategies.greedy:Greedy",
    "interp": "specbench_cli.strategies.interp:Interp",
    "sps": "specbench_cli.strategies.sps:SpS",
    "tas": "specbench_cli.strategies.typical:TypicalAcceptance",
    "topk": "specbench_cli.strategies.topk:TopK",
}
_SPEC_FORM = "expected 'name' or 'name:key=value,key=value'"


def available_strategies() -> list[str]:
    """Registered strategy names, sorted."""
    return sorted(_REGISTRY)


def strategy_class(name: str) -> type[Strategy]:
    """The class registered under `name`; unknown names raise `ValueError` with a hint."""
    if name not in _REGISTRY:
        hint = get_close_matches(str(name), _REGISTRY, n=1)
        did = f"; did you mean {hint[0]!r}?" if hint else ""
        known = ", ".join(available_strategies())
        raise ValueError(f"unknown strategy {name!r}{did} (available: {known})")
    module, _, attr = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def get_strategy(name: str, *, backend: str = "torch", **params: Any) -> Strategy:
    """Build a strategy; unknown names or parameters and out-of-range values raise `ValueError`."""
    return strategy_class(name)(backend=backend, **params)


def parse_strategy_spec(spec: str) -> Strategy:
    """Build a strategy from the CLI form `name` or `name:key=value,...` (values are parsed by
    the type of the parameter's default; a trailing comma is allowed)."""
    if not isinstance(spec, str):
        raise ValueError(f"bad strategy spec {spec!r}: {_SPEC_FORM}")
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise ValueError(f"bad strategy spec {spec!r}: {_SPEC_FORM}")
    params: dict[str, str] = {}
    for item in rest.split(","):
        if not item.strip():
            continue
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or not key or not value:
            raise ValueError(f"bad strategy spec {spec!r}: {item.strip()!r} is not key=value")
        if key in params:
            raise ValueError(f"bad strategy spec {spec!r}: {key!r} given twice")
        params[key] = value
    return get_strategy(name, **params)


def __getattr__(attr: str) -> Any:
    # Types come from base.py on first use, so importing this package does not import torch.
    if attr in ("Noise", "Strategy", "VerifyResult", "verify_with_noise"):
        return getattr(importlib.import_module(".base", __name__), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
