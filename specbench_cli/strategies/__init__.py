"""Acceptance strategies: the registry and the public API the engine and CLI use.

Owns name -> class lookup (lazy "module:Class" strings, so listing names never imports torch),
construction with parameter checks, and the CLI spec form `name` or `name:key=value,...`. The
rules live one per module; the shared driver, noise and result types live in `base.py`.

Example (q `[B, k+1, V]`, p `[B, k, V]` or None, x `[B, k]`):

    s = parse_strategy_spec("cactus:delta=0.5")   # s.label == "cactus:delta=0.5"
    r = s.verify(q, p, x, torch.Generator().manual_seed(0))
    r.tokens        # [B, k+1]: accepted drafts, one emitted token, then -1
    r.num_accepted  # [B]
"""

from __future__ import annotations

import importlib
import math
import numbers
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Noise, Strategy, VerifyResult, verify_with_noise

__all__ = [
    "Noise",
    "Strategy",
    "VerifyResult",
    "available_strategies",
    "coerce_params",
    "get_strategy",
    "parse_strategy_spec",
    "spec_label",
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
_KINDS = {str: str, int: numbers.Integral, float: numbers.Real}  # accepted values per kind


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


def coerce_params(name: str, defaults: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Defaults merged with `params`, each checked against its default's type (str, int or
    finite float); strings, as they come from the CLI, are parsed to that type."""
    merged = dict(defaults)
    for key, value in params.items():
        if key not in defaults:
            hint = get_close_matches(key, defaults, n=1)
            did = f"; did you mean {hint[0]!r}?" if hint else ""
            known = ", ".join(defaults) or "none"
            raise ValueError(
                f"strategy {name!r} has no parameter {key!r}{did} (parameters: {known})"
            )
        kind = type(defaults[key])
        try:
            parsed = kind(value) if isinstance(value, str) else value
            if isinstance(parsed, bool) or not isinstance(parsed, _KINDS[kind]):
                raise TypeError
            merged[key] = parsed = kind(parsed)
            if kind is float and not math.isfinite(parsed):
                raise TypeError
        except (TypeError, ValueError):
            raise ValueError(
                f"strategy {name!r}: parameter {key!r} expects a finite {kind.__name__}, "
                f"got {value!r}"
            ) from None
    return merged


def spec_label(name: str, params: dict[str, Any]) -> str:
    """`name` or `name:key=value,...` with every parameter, sorted keys and floats in repr form,
    so labels are stable keys in result files and parse back to the same strategy."""
    if not params:
        return name
    items = (f"{key}={value!r}" if isinstance(value, float) else f"{key}={value}"
             for key, value in sorted(params.items()))  # fmt: skip
    return f"{name}:{','.join(items)}"


def __getattr__(attr: str) -> Any:
    # Types come from base.py on first use, so importing this package does not import torch.
    if attr in ("Noise", "Strategy", "VerifyResult", "verify_with_noise"):
        return getattr(importlib.import_module(".base", __name__), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
