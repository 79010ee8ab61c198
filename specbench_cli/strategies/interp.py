"""Interpolation acceptance (baseline from the Cactus repository, `cactus/interp.py`);
docs/strategies.md.

Owns the interp rule: SpS run against the mixture `m = alpha * p + (1 - alpha) * q`, so the
emitted law is exactly `m` and `TV(pi, q) = alpha * TV(p, q)`. Limits: `alpha = 0` is SpS token
for token under the same noise; `alpha = 1` accepts every draft with `p(x) > 0` (pure drafting).
`KL(pi || q)` is infinite when `p` has mass where `q = 0` (e.g. top-p truncation of the target).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import KernelDesc, Row, Strategy
from .inputs import as_pair


class Interp(Strategy):
    """Interpolation: SpS against the mixture alpha*p + (1-alpha)*q; lossy unless alpha = 0."""

    name = "interp"
    PARAMS = {"alpha": 0.5}
    EXAMPLES = ("alpha=0.3",)

    def check_params(self) -> None:
        alpha = self.params["alpha"]
        self._require(0.0 <= alpha <= 1.0, f"alpha must lie in [0, 1], got {alpha}")

    @property
    def lossless(self) -> bool:
        return self.params["alpha"] == 0.0

    @property
    def kernel(self) -> KernelDesc:
        return KernelDesc(policy=5, interp_alpha=self.params["alpha"])

    def accept_threshold(self, q_x: Tensor, p_x: Tensor) -> Tensor:
        alpha = self.params["alpha"]
        return alpha * p_x + (1.0 - alpha) * q_x  # the mixture at x; alpha = 0 gives exactly q

    def residual(self, row: Row) -> Tensor:
        # max(0, m - p) = (1 - alpha) * max(0, q - p): the scale does not change the law, and
        # leaving it out keeps alpha = 0 identical to SpS (the repository floors at float32
        # `tiny` instead; an all-zero residual falls back to q in the driver).
        return (row.q - row.p).clamp_min(0.0)

    def output_distribution(self, q: Tensor, p: Tensor) -> Tensor:
        q, p = as_pair(q, p)
        alpha = self.params["alpha"]
        return alpha * p + (1.0 - alpha) * q

    def acceptance_probability(self, q: Tensor, p: Tensor) -> float:
        mixture = self.output_distribution(q, p)
        return float(torch.minimum(as_pair(q, p)[1], mixture).sum())
