"""Recursive rejection sampling over siblings drawn without replacement: Jeon et al., "Recursive
Speculative Decoding: Accelerating LLM Inference via Sampling Without Replacement" (2024);
docs/trees.md.

Owns the without-replacement child laws. The K children of a node are distinct draws from one
draft row `p` (Gumbel-top-K: the order of the perturbed scores is the order of sequential
sampling without replacement), so child i was drawn from
`p_i(x) = p(x) 1[x not in {c_1..c_{i-1}}] / (1 - sum_{j<i} p(c_j))`.
The walk is SpecInfer's (`specinfer.RecursiveRejection`) with these laws. A rejected `c_i` has
`q_{i+1}(c_i) = 0`, consistent with later children never repeating it. Lossless. If `p` has fewer
than K tokens with mass, a drafter draws only as many children as it has.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import Tensor

from .inputs import as_pair
from .specinfer import RecursiveRejection
from .tree_base import SiblingGroup

ENUMERATION_LIMIT = 100_000  # ordered sibling tuples acceptance_probability may enumerate


def without(p: Tensor, taken: Tensor) -> Tensor:
    """`p` `[A, V]` with the ids in `taken` `[A, j]` zeroed and renormalized (rows with no mass
    left stay zero: such a draw was impossible, and the accept test then follows the p = 0 rule)."""
    if taken.shape[1]:
        p = p.scatter(1, taken, 0.0)
    total = p.sum(-1, keepdim=True)
    return torch.where(total > 0, p / total.clamp_min(1e-30), 0.0)


class RecursiveRejectionSampling(RecursiveRejection):
    """RRS: recursive rejection over siblings drawn without replacement; lossless."""

    name = "rrs"
    draft_scheme = "without_replacement"

    def child_law(self, group: SiblingGroup, slot: int) -> Tensor:
        if group.probs is None:
            return group.one_hot(slot)
        # earlier children of a row are all live: children fill the slots in order
        return without(group.probs[:, slot], group.tokens[:, :slot])

    def acceptance_probability(self, q: Tensor, p: Tensor, siblings: int = 1) -> float:
        """Exact, by enumerating the ordered sibling tuples (O(V^K): small vocabularies)."""
        q, p = (t.numpy() for t in as_pair(q, p))
        ids = np.flatnonzero(p > 0).tolist()
        draws = min(siblings, len(ids))
        if math.perm(len(ids), draws) > ENUMERATION_LIMIT:
            raise ValueError(f"rrs acceptance_probability would enumerate "
                             f"{math.perm(len(ids), draws)} sibling tuples (limit "
                             f"{ENUMERATION_LIMIT}); use a smaller vocabulary")  # fmt: skip
        none = 0.0
        for tup in itertools.permutations(ids, draws):
            prob, q_i, law = 1.0, q, p
            for c in tup:
                prob *= law[c] * max(0.0, 1.0 - q_i[c] / law[c])
                if prob == 0.0:
                    break
                w = np.maximum(q_i - law, 0.0)
                q_i = w / w.sum() if w.sum() > 0 else q_i
                law = law.copy()
                law[c] = 0.0
                law = law / law.sum() if law.sum() > 0 else law
            none += prob
        return 1.0 - none
