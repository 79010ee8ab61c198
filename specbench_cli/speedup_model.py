"""The textbook speedup model (Leviathan et al. 2023) fed with measured counts instead of an
i.i.d. acceptance rate. Pure functions over numbers; imports nothing of ours.

Inputs, all measured by a run:
- `reach[i-1]` = P(a step accepts at least i drafts), over all speculative steps (a step whose
  drafter proposed nothing accepts 0), for i = 1..k of the run. Under the i.i.d. model this
  is `alpha**i`.
- `tail`: the acceptance of one more position given the previous ones were accepted, used for
  positions the run did not draft (the conditional acceptance pooled over positions 2..k):
  the profile is extended geometrically, `reach[i] = reach[k-1] * tail**(i-k+1)`.
- `c`: drafter time for one drafted token over the target's time for one ordinary decoding
  step (`cost_ratio`).

Then, for a draft length k (docs/metrics.md):

    E[tau](k) = 1 + sum_{i=1..k} reach_i          tokens per target pass
    S(k)      = E[tau](k) / (1 + k * c)           predicted wall-time speedup

which is Leviathan's `(1 - alpha**(k+1)) / ((1 - alpha)(1 + k c))` when `reach_i = alpha**i`.
The recommended k maximises S(k) over 1..K_MAX (the smallest on ties). The calibrated variant
also charges the verify pass its measured cost (`effective_cost_ratio`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

K_MAX = 32  # recommendations search k = 1..K_MAX


def extended_reach(reach: Sequence[float], tail: float, k: int) -> list[float]:
    """The first k entries of the profile, extended geometrically with `tail` past the
    measured positions (zeros when nothing was measured)."""
    out = [float(r) for r in reach[:k]]
    last = out[-1] if out else 0.0
    while len(out) < k:
        last *= tail
        out.append(last)
    return out


def expected_tokens(reach: Sequence[float], tail: float, k: int) -> float:
    """Tokens emitted per target forward pass at draft length k: accepted drafts + 1."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return 1.0 + sum(extended_reach(reach, tail, k))


def predicted_speedup(reach: Sequence[float], tail: float, c: float, k: int) -> float:
    """S(k) = E[tau](k) / (1 + k c)."""
    if c < 0:
        raise ValueError(f"the cost ratio must be >= 0, got {c}")
    return expected_tokens(reach, tail, k) / (1.0 + k * c)


def speedup_curve(reach: Sequence[float], tail: float, c: float, k_max: int = K_MAX) -> list[float]:
    """[S(1), ..., S(k_max)]."""
    return [predicted_speedup(reach, tail, c, k) for k in range(1, k_max + 1)]


def recommended_k(reach: Sequence[float], tail: float, c: float, k_max: int = K_MAX) -> int:
    """argmax over k = 1..k_max of S(k); the smallest k on ties."""
    curve = speedup_curve(reach, tail, c, k_max)
    return 1 + max(range(len(curve)), key=lambda i: (curve[i], -i))


def reach_from_histogram(histogram: Sequence[int], undrafted_steps: int = 0) -> list[float]:
    """`reach` from the histogram of accepted drafts per drafting step (`histogram[a]` steps
    accepted exactly a) and the steps that drafted nothing (they accept 0)."""
    steps = sum(histogram) + undrafted_steps
    if steps == 0:
        return []
    at_least = [sum(histogram[i:]) for i in range(1, len(histogram))]
    return [n / steps for n in at_least]


def effective_cost_ratio(c: float, verify_ratio: float, k: int) -> float:
    """c plus the measured growth of the verify pass per drafted token.

    The standard model charges a verify pass of k+1 tokens as one ordinary step. Measured, it
    costs `verify_ratio` steps at the run's k; taking that cost as linear in the drafted
    tokens, `v(k) = 1 + k (verify_ratio - 1) / k_run`, gives `S(k) = E[tau](k) / (1 + k c +
    k (verify_ratio - 1) / k_run)`: the standard formula with c raised by the slope (never
    below 0)."""
    return max(0.0, c + (verify_ratio - 1.0) / k)


def _prediction(reach: Sequence[float], tail: float, c: float, k: int,
                k_max: int) -> dict[str, Any]:  # fmt: skip
    curve = speedup_curve(reach, tail, c, max(k_max, k))
    best = recommended_k(reach, tail, c, k_max)
    return {
        "cost_ratio": c,
        "predicted_speedup": curve[k - 1],
        "recommended_k": best,
        "predicted_speedup_at_recommended_k": curve[best - 1],
        "predicted_speedup_by_k": curve[:k_max],
    }


def model_summary(reach: Sequence[float], tail: float, c: float, k: int,
                  verify_ratio: float | None = None,
                  k_max: int = K_MAX) -> dict[str, Any]:  # fmt: skip
    """The results-row form at the run's k: the standard prediction (curve, recommendation,
    value at k) and, when the verify pass was measured, the same with its cost (`calibrated`)."""
    summary = {**_prediction(reach, tail, c, k, k_max), "tail_acceptance": tail,
               "verify_cost_ratio": verify_ratio, "calibrated": None}  # fmt: skip
    if verify_ratio is not None:
        calibrated = effective_cost_ratio(c, verify_ratio, k)
        summary["calibrated"] = _prediction(reach, tail, calibrated, k, k_max)
    return summary
