"""Greedy verification for temperature 0 (docs/strategies.md).

Owns the argmax rule. A draft is accepted while it equals the target argmax (lowest id on ties);
the emitted token is the target argmax at the first mismatch, or at the bonus row when every
draft matched. The argmax is taken on `target_logits` when given, the same float32 values the
autoregressive baseline takes its argmax of, because softmax rounding can merge two nearly equal
logits and change which id wins. Consumes no randomness, so the noise may be None. The same
class verifies token trees (`tree_greedy.py`): the first child equal to the argmax is accepted.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import KernelDesc, Step, Strategy
from .inputs import as_pair
from .tree_greedy import TreeGreedyRule
from .weights import gather_rows


class Greedy(Strategy, TreeGreedyRule):
    """Greedy verification: accept drafts equal to the target argmax (temperature 0)."""

    name = "greedy"
    LOSSLESS = True  # with respect to greedy decoding: pi = one-hot(argmax q), the AR choice
    USES_LOGITS = True
    NEEDS_GREEDY_SAMPLING = True  # argmax verification reproduces temperature-0 decoding only

    @property
    def uses_noise(self) -> bool:
        return False

    @property
    def kernel(self) -> KernelDesc:
        return KernelDesc(policy=0, scans_rows=True)

    def sampled_final(self, is_bonus: bool) -> bool:
        return False

    def decided_by_rounding(self, q_row: Tensor, x: int, p_x: float, u: float) -> bool:
        return False  # an argmax comparison: exact

    @staticmethod
    def _scores(step: Step) -> Tensor:  # [B, k+1, V]
        return step.target_probs if step.target_logits is None else step.target_logits

    def accept(self, step: Step) -> Tensor:
        k = step.draft_tokens.shape[1]
        return step.draft_tokens == self._scores(step)[:, :k].argmax(-1)

    def emit(self, step: Step, num_accepted: Tensor, is_bonus: Tensor) -> Tensor:
        return gather_rows(self._scores(step), num_accepted).argmax(-1)

    def output_distribution(self, q: Tensor, p: Tensor, siblings: int = 1) -> Tensor:
        q, _ = as_pair(q, p)
        return torch.zeros_like(q).index_fill_(0, q.argmax(), 1.0)

    def acceptance_probability(self, q: Tensor, p: Tensor, siblings: int = 1) -> float:
        """`p(g)` for one draft; `1 - (1 - p(g))^K` for K siblings drawn i.i.d. from p."""
        q, p = as_pair(q, p)
        hit = float(p[q.argmax()])
        return hit if siblings == 1 else 1.0 - (1.0 - hit) ** siblings
