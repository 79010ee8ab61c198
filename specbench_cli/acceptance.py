"""Per-position acceptance in the three forms in use, and the accepted-length histogram.

Pure counting over the speculative steps of records: each step drafted n tokens and accepted
the first a of them (a chain stops at its first rejection, so a <= n). For draft position i
(1-based, i <= k):

- joint:         P(first i accepted | the step drafted at least i)
                 = #(a >= i) / #(n >= i)          (`per_position_acceptance`)
- conditional:   P(i accepted | i drafted and 1..i-1 accepted)
                 = #(a >= i) / #(n >= i and a >= i-1)
- unconditional: #(a >= i) / #(drafting steps)     (vLLM's per-position acceptance rate)

When every step drafts k tokens, joint = unconditional = the product of the conditionals up to
i. `histogram[a]` counts the drafting steps (n >= 1) that accepted exactly a drafts. Positions no
step reached report 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


@dataclass
class PositionCounts:
    """Step counts for draft positions 1..k."""

    k: int
    steps: int = 0  # speculative steps (prefill excluded), drafting or not
    drafting_steps: int = 0  # steps with n >= 1
    drafted: list[int] = field(default_factory=list)  # [i-1]: steps with n >= i
    reached: list[int] = field(default_factory=list)  # [i-1]: n >= i and a >= i-1
    accepted: list[int] = field(default_factory=list)  # [i-1]: a >= i
    histogram: list[int] = field(default_factory=list)  # [a]: drafting steps accepting a

    def __post_init__(self) -> None:
        for name, size in (("drafted", self.k), ("reached", self.k), ("accepted", self.k),
                           ("histogram", self.k + 1)):  # fmt: skip
            if not getattr(self, name):
                setattr(self, name, [0] * size)

    def add(self, accepted: int, drafted: int) -> None:
        """One step that drafted `drafted` tokens and accepted the first `accepted`."""
        self.steps += 1
        if drafted < 1:
            return
        self.drafting_steps += 1
        self.histogram[min(accepted, self.k)] += 1
        for i in range(min(drafted, self.k)):
            self.drafted[i] += 1
            self.reached[i] += accepted >= i
            self.accepted[i] += accepted > i

    def joint(self) -> list[float]:
        return [_ratio(a, d) for a, d in zip(self.accepted, self.drafted, strict=True)]

    def conditional(self) -> list[float]:
        return [_ratio(a, r) for a, r in zip(self.accepted, self.reached, strict=True)]

    def unconditional(self) -> list[float]:
        return [_ratio(a, self.drafting_steps) for a in self.accepted]

    def reach(self) -> list[float]:
        """P(a step accepts at least i drafts) over all speculative steps (the speedup
        model's profile; a step that drafted nothing accepts 0)."""
        return [_ratio(a, self.steps) for a in self.accepted]

    def tail(self) -> float:
        """The conditional acceptance pooled over positions 2..k (position 1 alone when k = 1):
        how likely one more draft is accepted once the first were, for the speedup model's
        positions beyond k. Pooling keeps a deep position reached by a handful of steps from
        deciding it alone; position 1 is left out because a first draft fails for reasons
        later ones do not (the drafter had nothing good to propose). 0 if nothing reached."""
        start = 1 if self.k > 1 else 0
        reached = sum(self.reached[start:])
        return sum(self.accepted[start:]) / reached if reached else 0.0


def count_positions(steps: Iterable[tuple[int, int]], k: int) -> PositionCounts:
    """Counts over (accepted, drafted) pairs of speculative steps."""
    counts = PositionCounts(k)
    for accepted, drafted in steps:
        counts.add(accepted, drafted)
    return counts
