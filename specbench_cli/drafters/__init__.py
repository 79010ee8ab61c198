"""Drafters: who proposes the k tokens the target verifies.

A drafter is one small module with a class that follows `Drafter`, plus an entry in `_REGISTRY`
(lazy "module:Class" strings so the CLI never imports what it does not use). The engine sees only
this protocol: `propose` returns a `Draft`, `observe` hears how many drafts were accepted.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any, Protocol

import torch

_REGISTRY = {
    "model": "specbench_cli.drafters.draft_model:DraftModelDrafter",
    "ngram": "specbench_cli.drafters.ngram:NgramDrafter",
}


@dataclass
class Draft:
    tokens: list[int]  # n_r <= k proposed ids
    probs: torch.Tensor | None  # [n_r, V] float32 law each token was drawn from; None = one-hot
    forward_s: float = 0.0  # time inside model forward passes (0 for model-free drafters)


class Drafter(Protocol):
    name: str
    params: dict[str, Any]

    def reset(self, seed: int) -> None:
        """Start a new sequence: drop caches, reseed the drafting generator."""

    def propose(self, context: list[int], k: int) -> Draft:
        """Propose up to k tokens to follow `context` (all committed ids, pending one included)."""

    def observe(self, num_accepted: int) -> None:
        """Feedback after verification: how many of the last proposal's tokens were kept."""


def available_drafters() -> list[str]:
    return sorted(_REGISTRY)


def drafter_class(name: str) -> type:
    if name not in _REGISTRY:
        hint = difflib.get_close_matches(name, _REGISTRY, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown drafter {name!r}{extra}; available: {known}")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def parse_drafter_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """`name` or `name:key=value,...` -> (name, params); types follow the class defaults."""
    name, _, rest = spec.partition(":")
    cls = drafter_class(name.strip())
    params: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or key not in cls.PARAMS:
            known = ", ".join(cls.PARAMS) or "none"
            raise ValueError(f"drafter {name}: bad parameter {item!r} (parameters: {known})")
        default = cls.PARAMS[key]
        try:
            params[key] = type(default)(value) if not isinstance(default, bool) else value in (
                "1", "true", "yes")
        except ValueError:
            raise ValueError(f"drafter {name}: {key} must be {type(default).__name__}") from None
    return name.strip(), params
