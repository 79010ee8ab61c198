"""Multi-round speculative sampling over i.i.d. siblings: SpecInfer (Miao et al., "SpecInfer:
Accelerating Large Language Model Serving with Tree-based Speculative Inference and
Verification", ASPLOS 2024); docs/trees.md.

Owns the recursive rejection walk over one sibling group, shared with `rrs`. With `q_1 = q`, for
the children `c_1..c_K` in node order: accept `c_i` iff `u_i p_i(c_i) < q_i(c_i)`; otherwise
`q_{i+1} = norm(max(q_i - p_i, 0))`. No child accepted: emit a sample of `q_{K+1}`. Here `p_i` is
the law child i was drawn from: the draft row itself for i.i.d. siblings (this rule), the law
conditioned on the earlier siblings for draws without replacement (`rrs`).

The residual after a rejection does not depend on which token was rejected, so the emitted token
has law `q` (lossless) and `P(no child accepted) = prod_i (1 - sum_x min(p_i(x), q_i(x)))`.
One sibling is SpS. Deterministic (one-hot) children: accept `c_i` with probability `q_i(c_i)`,
then zero it out; a repeated child is then always rejected.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .inputs import as_pair
from .tree_base import SiblingGroup, TreeStrategy


def sps_step(q_i: Tensor, p_i: Tensor) -> Tensor:
    """`norm(max(q_i - p_i, 0))` per row (`[A, V]`), or `q_i` where that residual is empty
    (only through rounding: rejection then had probability ~0)."""
    w = (q_i - p_i).clamp_min_(0.0)
    total = w.sum(-1, keepdim=True)
    return torch.where(total > 0, w / total.clamp_min(1e-30), q_i)


class RecursiveRejection(TreeStrategy):
    """Shared walk of `specinfer` and `rrs`; subclasses give each child's law."""

    LOSSLESS = True

    def child_law(self, group: SiblingGroup, slot: int) -> Tensor:
        """`[A, V]` the law the child in `slot` was drawn from, given the earlier children."""
        raise NotImplementedError

    def select(self, group: SiblingGroup) -> tuple[Tensor, Tensor]:
        A, K = group.tokens.shape
        q_i = group.q
        chosen = torch.full((A,), -1, dtype=torch.long, device=q_i.device)
        for slot in range(K):
            pending = (chosen < 0) & group.live[:, slot]
            if not bool(pending.any()):
                continue
            p_i = self.child_law(group, slot)
            # strict u p < q: q = 0 never accepts; p = 0 (contract violation) accepts iff q > 0
            accept = pending & (group.u[:, slot] * group.at(p_i, slot) < group.at(q_i, slot))
            chosen[accept] = slot
            rejected = pending & ~accept
            if bool(rejected.any()):
                q_i = torch.where(rejected[:, None], sps_step(q_i, p_i), q_i)
        return chosen, q_i

    def output_distribution(self, q: Tensor, p: Tensor, siblings: int = 1) -> Tensor:
        return as_pair(q, p)[0]


class SpecInfer(RecursiveRejection):
    """SpecInfer: multi-round speculative sampling over siblings drawn i.i.d.; lossless."""

    name = "specinfer"
    draft_scheme = "iid"

    def child_law(self, group: SiblingGroup, slot: int) -> Tensor:
        return group.law(slot)

    def acceptance_probability(self, q: Tensor, p: Tensor, siblings: int = 1) -> float:
        q_i, p = as_pair(q, p)
        none = 1.0
        for _ in range(siblings):
            none *= 1.0 - float(torch.minimum(q_i, p).sum())
            q_i = sps_step(q_i[None], p[None])[0]
        return 1.0 - none
