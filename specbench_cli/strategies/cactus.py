"""Cactus, constrained acceptance speculative sampling (Hao & Mou, ICLR 2026; MANGA-UOFA/Cactus
`cactus/cactus.py`); docs/strategies.md.

Owns the Cactus rule and its exact one-step law. For the drafted token n with `q_n = q(n)`:
`h_n = clamp(q_n + sqrt(2 delta q_n (1 - q_n)), 0, 1)` and `s_n = (1 - h_n) / (1 - q_n)`
(0 when `1 - q_n <= 1e-10`, i.e. q is one-hot at n and h = q). The boosted target `h^(n)` is
`s_n q` off n and `h_n` at n; accept iff `u p(n) < h_n`; on rejection sample from
`w(x) = max(0, s_n q(x) - p(x))` for x != n and `w(n) = max(0, h_n - p(n))`. `h` is never
materialized. Float32 evaluation order, for kernels to copy: `(2 delta) * q_n * (1 - q_n)`, then
sqrt, add, clamp; the residual is a multiply then a subtract (no fused multiply-add).

delta bounds `KL(h^(n) || q) <= log(1 + 2 delta)` for every n, not the divergence of the emitted
token: `pi(x) = p(x) a_x + sum_n p(n) (1 - a_n) r_n(x)` depends on which token was drafted and
`KL(pi || q)` can exceed delta (measure it, never assert it). delta = 0 is SpS token for token.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import KernelDesc, Row, Strategy
from .inputs import as_pair


def boost(q_n: Tensor, delta: float) -> tuple[Tensor, Tensor]:
    """`(h_n, s_n)` for drafted-token target probabilities `q_n` (any shape and float dtype)."""
    # clamp_min keeps sqrt real when q_n rounds slightly above 1
    h = (q_n + torch.sqrt((2.0 * delta * q_n * (1.0 - q_n)).clamp_min(0.0))).clamp(0.0, 1.0)
    rest = 1.0 - q_n
    return h, torch.where(rest > 1e-10, (1.0 - h) / rest, 0.0)


class Cactus(Strategy):
    """Cactus: boost the drafted token's target prob within a chi-square budget delta; lossy."""

    name = "cactus"
    PARAMS = {"delta": 1.0}
    EXAMPLES = ("delta=0.5", "delta=0")

    def check_params(self) -> None:
        delta = self.params["delta"]
        self._require(delta >= 0.0, f"delta must be >= 0, got {delta}")

    @property
    def lossless(self) -> bool:
        return self.params["delta"] == 0.0

    @property
    def kernel(self) -> KernelDesc:
        return KernelDesc(policy=3, delta=self.params["delta"])

    def accept_threshold(self, q_x: Tensor, p_x: Tensor) -> Tensor:
        return boost(q_x, self.params["delta"])[0]

    def residual(self, row: Row) -> Tensor:
        h, s = boost(row.q_x, self.params["delta"])
        weights = (s[:, None] * row.q - row.p).clamp_min(0.0)
        return weights.scatter_(1, row.x[:, None], (h - row.p_x).clamp_min(0.0)[:, None])

    def acceptance_probability(self, q: Tensor, p: Tensor) -> float:
        q, p = as_pair(q, p)
        return float(torch.minimum(p, boost(q, self.params["delta"])[0]).sum())

    def output_distribution(self, q: Tensor, p: Tensor) -> Tensor:
        """Exact law in O(V log V) instead of the O(V^2) sum over drafted tokens."""
        q, p = as_pair(q, p)
        h, s = boost(q, self.params["delta"])
        accept = torch.where(p > 0, (h / p).clamp(max=1.0), 0.0)  # a_n

        # F(s) = sum_x max(0, s q_x - p_x): only x with q_x > 0 and p_x / q_x < s contribute.
        support = q > 0
        ratio = torch.where(support, p / q, torch.inf)  # r_x; inf never contributes
        order = ratio.argsort()
        q_cum = torch.cat([q.new_zeros(1), q[order].cumsum(0)])
        p_cum = torch.cat([p.new_zeros(1), p[order].cumsum(0)])
        m = torch.searchsorted(ratio[order], s)  # #{x : r_x < s_n}
        own = (s * q - p).clamp_min(0.0)  # w^(n) would include this at n, where it uses h_n
        norm = s * q_cum[m] - p_cum[m] - own  # Z_n; w^(n)(n) = 0 whenever a_n < 1
        reject = p * (1.0 - accept)
        c = torch.where((reject > 0) & (norm > 0), reject / norm, 0.0)

        # G(x) = sum_n c_n max(0, s_n q_x - p_x): the n with s_n > r_x contribute.
        by_s = s.argsort(descending=True)
        c1 = torch.cat([q.new_zeros(1), (c * s)[by_s].cumsum(0)])
        c0 = torch.cat([q.new_zeros(1), c[by_s].cumsum(0)])
        m_x = torch.searchsorted(-s[by_s], -ratio)  # #{n : s_n > r_x}
        spread = torch.where(support, q * c1[m_x] - p * c0[m_x], 0.0)
        return p * accept + spread - c * own
