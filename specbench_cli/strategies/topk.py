"""Top-k acceptance (baseline from the Cactus repository, `cactus/topk.py`); docs/strategies.md.

Owns the top-k rule: accept the draft iff it is in `T = {x : q(x) >= theta}`, theta the K-th
largest target value (ties can make T larger than K); deterministic test. The correction is
drawn from the unnormalized indicator weights `max(0, 1[x in T] - p(x))`, close to uniform over
T, not from q restricted to T. specbench guard (documented in results): when theta = 0 (K exceeds
the support of q) T is `{x : q(x) > 0}`, so zero-probability tokens are never emitted. Lossy:
`pi(x) = p(x) 1[x in T] + (1 - p(T)) 1[x in T] (1 - p(x)) / (|T| - p(T))`.
"""

from __future__ import annotations

from torch import Tensor

from .base import KernelDesc, Row, Step, Strategy
from .inputs import as_pair

_SMALLEST = 1.401298464324817e-45  # smallest positive float32: q >= it  <=>  q > 0


def kth_largest(q: Tensor, K: int) -> Tensor:
    """theta `[...]` for target rows `[..., V]`, raised to the smallest positive float32 so that
    `q >= theta` also applies the theta = 0 guard."""
    if K > q.shape[-1]:
        return q.new_full(q.shape[:-1], _SMALLEST)
    return q.topk(K, dim=-1, sorted=False).values.amin(-1).clamp_min(_SMALLEST)


def members(q: Tensor, theta: Tensor) -> Tensor:
    """Float indicator of `q >= theta` (`[B, V]` against `[B, 1]`); sign arithmetic is exact
    and much cheaper than a boolean mask on CPU."""
    return (q - theta).sign_().add_(1.0).clamp_max_(1.0)


class TopK(Strategy):
    """Top-k acceptance: accept drafts among the target's K most likely tokens; lossy."""

    name = "topk"
    PARAMS = {"k": 5}
    EXAMPLES = ("", "k=50")

    def check_params(self) -> None:
        self._require(self.params["k"] >= 1, f"k must be >= 1, got {self.params['k']}")

    @property
    def kernel(self) -> KernelDesc:
        return KernelDesc(policy=4, topk=self.params["k"], scans_rows=True, extra_rows=1)

    def decided_by_rounding(self, q_row: Tensor, x: int, p_x: float, u: float) -> bool:
        return False  # a comparison of target values, no arithmetic: exact

    def accept(self, step: Step) -> Tensor:
        # q_x >= theta  <=>  fewer than K tokens have a strictly larger q (no top-k per row)
        k = step.draft_tokens.shape[1]
        above = (step.target_probs[:, :k] - step.q_x[..., None]).sign_().clamp_min_(0.0).sum(-1)
        return (above < self.params["k"]) & (step.q_x > 0)

    def residual(self, row: Row) -> Tensor:
        in_top = members(row.q, kth_largest(row.q, self.params["k"])[:, None])
        return (in_top - row.p).clamp_min_(0.0)

    def _top_set(self, q: Tensor) -> Tensor:
        # decide membership in float32, exactly as verify does
        q32 = q.float()
        return q32 >= kth_largest(q32, self.params["k"])

    def output_distribution(self, q: Tensor, p: Tensor) -> Tensor:
        q, p = as_pair(q, p)
        in_top = self._top_set(q).double()
        p_in = float((p * in_top).sum())
        spare = float((in_top * (1.0 - p)).sum())  # |T| - p(T), the residual's total weight
        pi = p * in_top
        if spare > 0.0:  # spare = 0 means T = {x} with p(x) = 1: nothing is ever rejected
            # p(T) can exceed 1 by float32 rounding of p; the rejection mass is then 0
            pi += max(0.0, 1.0 - p_in) * in_top * (1.0 - p) / spare
        return pi

    def acceptance_probability(self, q: Tensor, p: Tensor) -> float:
        q, p = as_pair(q, p)
        return float(p[self._top_set(q)].sum())
