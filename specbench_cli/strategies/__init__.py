"""Acceptance strategies: the registry and the public API the engine and the CLI use.

Owns name -> class lookup (lazy "module:Class" strings, so listing names never imports torch),
construction with parameter checks, and the CLI spec form `name` or `name:key=value,...`. The
rules live one per module. Two protocols: chain rules (`Strategy`, `VerifyResult`, the reference
driver, in `base.py`) verify one drafted chain; tree rules (`TreeStrategy` in `tree_base.py`,
`DraftTree` in `tree.py`) verify a tree of drafts. `greedy` is both. A chain strategy verifies on
the backend it was built for (`specbench_cli.backends`); tree rules run the reference.

Example (q `[B, k+1, V]`, p `[B, k, V]` or None, x `[B, k]`):

    s = parse_strategy_spec("cactus:delta=0.5")   # s.label == "cactus:delta=0.5"
    r = s.verify(q, p, x, torch.Generator().manual_seed(0))
    r.tokens        # [B, k+1]: accepted drafts, one emitted token, then -1
    r.num_accepted  # [B]

    t = get_strategy("rrs")
    r = t.verify_tree(q_tree, DraftTree(tokens, parents, draft_probs), generator=g)
    r.path, r.tokens  # accepted node indices; their tokens plus one emitted token
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from specbench_cli.registry import Registry, parse_spec

if TYPE_CHECKING:
    from specbench_cli.noise import Noise

    from .base import Strategy, VerifyResult
    from .rule import Rule
    from .tree import DraftTree, TreeVerifyResult
    from .tree_base import TreeStrategy

__all__ = [
    "DraftTree",
    "Noise",
    "STRATEGIES",
    "Strategy",
    "TreeStrategy",
    "TreeVerifyResult",
    "VerifyResult",
    "available_strategies",
    "get_strategy",
    "parse_strategy_spec",
    "rule_kinds",
    "strategy_class",
]
_LAZY = {"Noise": "specbench_cli.noise", "Strategy": ".base", "VerifyResult": ".base",
         "DraftTree": ".tree", "TreeVerifyResult": ".tree", "TreeStrategy": ".tree_base"}

STRATEGIES = Registry("strategy", {
    "block": "specbench_cli.strategies.block:Block",
    "cactus": "specbench_cli.strategies.cactus:Cactus",
    "greedy": "specbench_cli.strategies.greedy:Greedy",
    "interp": "specbench_cli.strategies.interp:Interp",
    "rrs": "specbench_cli.strategies.rrs:RecursiveRejectionSampling",
    "specinfer": "specbench_cli.strategies.specinfer:SpecInfer",
    "spectr": "specbench_cli.strategies.spectr:SpecTr",
    "sps": "specbench_cli.strategies.sps:SpS",
    "tas": "specbench_cli.strategies.typical:TypicalAcceptance",
    "topk": "specbench_cli.strategies.topk:TopK",
})  # fmt: skip


def available_strategies() -> list[str]:
    """Registered strategy names, sorted."""
    return STRATEGIES.names()


def strategy_class(name: str) -> type[Rule]:
    """The class registered under `name`; unknown names raise `ValueError` with a hint."""
    return STRATEGIES.load(name)


def rule_kinds(rule: Rule | type[Rule]) -> tuple[str, ...]:
    """What a rule verifies: ("chain",), ("tree",) or ("chain", "tree")."""
    from .base import Strategy
    from .tree_base import TreeStrategy

    cls = rule if isinstance(rule, type) else type(rule)
    return tuple(kind for kind, base in (("chain", Strategy), ("tree", TreeStrategy))
                 if issubclass(cls, base))  # fmt: skip


def decodes_trees(rule: Rule, drafter_params: dict[str, Any]) -> bool:
    """Tree-only rules always decode trees; greedy (both kinds) when the drafter branches."""
    kinds = rule_kinds(rule)
    return "tree" in kinds and ("chain" not in kinds or drafter_params.get("branches", 1) > 1)


def get_strategy(name: str, *, backend: str = "torch", **params: Any) -> Any:
    """Build a strategy (a `Strategy`, a `TreeStrategy`, or both for greedy) that verifies on
    `backend` (torch, cpu, cuda or auto; tree rules always run the reference); unknown names or
    parameters and out-of-range values raise `ValueError`."""
    from specbench_cli.backends import driver

    cls = strategy_class(name)
    return cls(driver=driver(backend), **params)


def parse_strategy_spec(spec: str, *, backend: str = "torch") -> Any:
    """Build a strategy from the CLI form `name` or `name:key=value,...` (values are parsed by
    the type of the parameter's default; a trailing comma is allowed)."""
    name, params = parse_spec(spec)
    return get_strategy(name, backend=backend, **params)


def __getattr__(attr: str) -> Any:
    # Types come on first use, so importing this package does not import torch.
    if attr in _LAZY:
        return getattr(importlib.import_module(_LAZY[attr], __name__), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
