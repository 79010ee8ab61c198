"""Standard speculative sampling (SpS): Leviathan et al. 2023, Chen et al. 2023.

Owns the SpS accept test and residual. Lossless: the emitted token has exactly the target law.
Deterministic drafts (`draft_probs=None`) accept with probability `q(x)` and correct from `q`
with `x` zeroed, which is still lossless.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import KernelDesc, Row, Strategy
from .inputs import as_pair


class SpS(Strategy):
    """Standard speculative sampling: accept with min(1, q/p), else resample max(q - p, 0)."""

    name = "sps"
    LOSSLESS = True

    @property
    def kernel(self) -> KernelDesc:
        return KernelDesc(policy=1)

    def accept_threshold(self, q_x: Tensor, p_x: Tensor) -> Tensor:
        return q_x  # u * p < q: q = 0 always rejects, p = 0 accepts iff q > 0

    def residual(self, row: Row) -> Tensor:
        return (row.q - row.p).clamp_min(0.0)

    def output_distribution(self, q: Tensor, p: Tensor) -> Tensor:
        return as_pair(q, p)[0]

    def acceptance_probability(self, q: Tensor, p: Tensor) -> float:
        q, p = as_pair(q, p)
        return float(torch.minimum(p, q).sum())
