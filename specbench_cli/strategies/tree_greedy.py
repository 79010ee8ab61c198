"""Greedy verification of a token tree (temperature 0); docs/trees.md.

Owns the tree form of `greedy`: at each node accept the first child equal to the target argmax
(taken on the processed logits when given, lowest id on ties); when no child matches, emit the
argmax; at a node without children the bonus is the argmax too. Consumes no randomness. The
emitted sequence is the target's greedy continuation, whatever the tree holds, so any drafting
scheme will do. `greedy` in the registry is both this tree rule and the chain rule.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from .tree_base import SiblingGroup, TreeStrategy


def one_hot_argmax(scores: Tensor) -> Tensor:
    """`[A, V]` one-hot at each row's argmax (lowest id on ties)."""
    return torch.zeros_like(scores).scatter_(1, scores.argmax(-1, keepdim=True), 1.0)


class TreeGreedyRule(TreeStrategy):
    """The tree half of greedy verification (mixed into the chain rule `greedy`)."""

    draft_scheme: ClassVar[str] = "any"

    def select(self, group: SiblingGroup) -> tuple[Tensor, Tensor]:
        scores = group.q if group.logits is None else group.logits
        best = scores.argmax(-1)  # [A]
        match = (group.tokens == best[:, None]) & group.live  # [A, K]
        first = torch.where(match.any(1), match.float().argmax(1), -1)  # the first matching slot
        return first, one_hot_argmax(scores)

    def bonus_weights(self, q: Tensor, logits: Tensor | None) -> Tensor:
        return one_hot_argmax(q if logits is None else logits)

    def final_token(self, weights: Tensor, fallback: Tensor, final: Tensor | None) -> Tensor:
        return weights.argmax(-1)  # one-hot weights: their argmax, no noise
