"""SpecTr's k-sequential draft selection (K-SEQ): Sun et al., "SpecTr: Fast Speculative Decoding
via Optimal Transport" (NeurIPS 2023); docs/trees.md.

Owns K-SEQ over one sibling group. The K children are i.i.d. draws from one draft row `p`. With
`beta(rho) = sum_x min(p(x), q(x)/rho)`, `rho*` is the smallest `rho` in `[1, K]` with
`g(rho) = rho beta(rho) - 1 + (1 - beta(rho))^K >= 0` (g is nondecreasing, `g(K) >= 0`), found by
60 bisection steps in float64. Accept the first child with `u_i rho* p(c_i) < q(c_i)`; none
accepted: sample `max(0, q - rho* p)`. Lossless; acceptance `1 - (1 - beta(rho*))^K`, at least
`1 - 1/e` of the best any lossless verifier reaches with the same drafts. One child is SpS
(`rho* = 1`). Children drawn as distinct deterministic tokens are not i.i.d. draws of one law:
K-SEQ refuses them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .inputs import as_pair
from .tree_base import SiblingGroup, TreeStrategy

BISECTION_STEPS = 60


def transport_ratio(q: Tensor, p: Tensor, k: Tensor) -> Tensor:
    """`rho*` `[A]` (float64) for rows of `q`, `p` `[A, V]` and sibling counts `k` `[A]`."""
    q, p, k = q.double(), p.double(), k.double()

    def g(rho: Tensor) -> Tensor:
        beta = torch.minimum(p, q / rho[:, None]).sum(-1)
        return rho * beta - 1.0 + (1.0 - beta).clamp_min(0.0) ** k

    lo = torch.ones_like(k)
    hi = k.clamp_min(1.0)
    done = g(lo) >= 0  # e.g. K = 1, or p = q
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        up = g(mid) >= 0
        hi = torch.where(up, mid, hi)
        lo = torch.where(up, lo, mid)
    return torch.where(done, 1.0, hi)


class SpecTr(TreeStrategy):
    """SpecTr K-SEQ: optimal-transport selection among siblings drawn i.i.d.; lossless."""

    name = "spectr"
    LOSSLESS = True
    draft_scheme = "iid"
    SAMPLED_SIBLINGS = True  # distinct deterministic siblings are no i.i.d. draws of one law

    def select(self, group: SiblingGroup) -> tuple[Tensor, Tensor]:
        A, K = group.tokens.shape
        if group.probs is None:
            differ = group.tokens != group.tokens[:, :1]
        else:
            differ = (group.probs != group.probs[:, :1]).any(-1)
        if bool((differ & group.live).any()):
            raise ValueError("spectr needs siblings drawn i.i.d. from one draft law; these "
                             "siblings come from different laws (use specinfer or rrs)")
        p = group.law(0).double()  # [A, V]: the one law every child was drawn from
        q = group.q.double()
        rho = transport_ratio(q, p, group.live.sum(1))
        chosen = torch.full((A,), -1, dtype=torch.long, device=q.device)
        for slot in range(K):
            pending = (chosen < 0) & group.live[:, slot]
            test = group.u[:, slot].double() * rho * group.at(p, slot) < group.at(q, slot)
            chosen[pending & test] = slot
        return chosen, (q - rho[:, None] * p).clamp_min_(0.0).float()

    def output_distribution(self, q: Tensor, p: Tensor, siblings: int = 1) -> Tensor:
        return as_pair(q, p)[0]

    def acceptance_probability(self, q: Tensor, p: Tensor, siblings: int = 1) -> float:
        q, p = as_pair(q, p)
        k = torch.tensor([float(siblings)], dtype=torch.float64)
        rho = transport_ratio(q[None], p[None], k)
        beta = float(torch.minimum(p, q / rho).sum())
        return 1.0 - (1.0 - beta) ** siblings
