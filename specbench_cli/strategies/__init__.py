"""Acceptance strategies: the registry and the public API the engine and the CLI use.

Owns name -> class lookup (lazy "module:Class" strings, so listing names never imports torch),
construction with parameter checks, and the CLI spec form `name` or `name:key=value,...`. The
rules live one per module; the chain protocol (`Strategy`, `VerifyResult`, the reference driver)
in `base.py`. A strategy verifies on the backend it was built for (`specbench_cli.backends`).

Example (q `[B, k+1, V]`, p `[B, k, V]` or None, x `[B, k]`):

    s = parse_strategy_spec("cactus:delta=0.5")   # s.label == "cactus:delta=0.5"
    r = s.verify(q, p, x, torch.Generator().manual_seed(0))
    r.tokens        # [B, k+1]: accepted drafts, one emitted token, then -1
    r.num_accepted  # [B]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from specbench_cli.registry import Registry, parse_spec

if TYPE_CHECKING:
    from specbench_cli.noise import Noise

    from .base import Strategy, VerifyResult

__all__ = [
    "Noise",
    "STRATEGIES",
    "Strategy",
    "VerifyResult",
    "available_strategies",
    "get_strategy",
    "parse_strategy_spec",
    "strategy_class",
]

STRATEGIES = Registry("strategy", {
    "cactus": "specbench_cli.strategies.cactus:Cactus",
    "greedy": "specbench_cli.strategies.greedy:Greedy",
    "interp": "specbench_cli.strategies.interp:Interp",
    "sps": "specbench_cli.strategies.sps:SpS",
    "tas": "specbench_cli.strategies.typical:TypicalAcceptance",
    "topk": "specbench_cli.strategies.topk:TopK",
})  # fmt: skip


def available_strategies() -> list[str]:
    """Registered strategy names, sorted."""
    return STRATEGIES.names()


def strategy_class(name: str) -> type[Strategy]:
    """The class registered under `name`; unknown names raise `ValueError` with a hint."""
    return STRATEGIES.load(name)


def get_strategy(name: str, *, backend: str = "torch", **params: Any) -> Strategy:
    """Build a strategy that verifies on `backend` (torch, cpu, cuda or auto); unknown names or
    parameters and out-of-range values raise `ValueError`."""
    from specbench_cli.backends import driver

    cls = strategy_class(name)
    return cls(driver=driver(backend), **params)


def parse_strategy_spec(spec: str, *, backend: str = "torch") -> Strategy:
    """Build a strategy from the CLI form `name` or `name:key=value,...` (values are parsed by
    the type of the parameter's default; a trailing comma is allowed)."""
    name, params = parse_spec(spec)
    return get_strategy(name, backend=backend, **params)


def __getattr__(attr: str) -> Any:
    # Types come on first use, so importing this package does not import torch.
    if attr == "Noise":
        return importlib.import_module("specbench_cli.noise").Noise
    if attr in ("Strategy", "VerifyResult"):
        return getattr(importlib.import_module(".base", __name__), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
