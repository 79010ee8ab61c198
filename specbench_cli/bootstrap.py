"""The one interval method behind every interval specbench reports.

Speedup intervals, quality deltas and `compare`'s noise check all resample the same unit, the
prompt, and use one method: a Student-t interval around the statistic of all n paired prompts,
with the paired bootstrap's standard error,

    estimate ± t(0.975; n−1) · √(n/(n−1)) · sd(statistic over bootstrap resamples).

Each resample draws n prompt indices with replacement (the same draw for both sides of a pair)
and recomputes the statistic, so any statistic works: a mean difference, a ratio of sums
(speedup), a median (time to first token); ratios get their interval on the log scale. For a
mean the bootstrap variance is (n−1)/n times the classical s²/n, so with the √(n/(n−1)) factor
this is the paired t interval, exact for normal differences at any n; the t quantile is what
keeps it honest at small n. The percentile
bootstrap it replaces uses normal-like quantiles and cannot be wider than the data's range: on
zero-effect data it called 15-16% of 5-prompt and 9-10% of 10-prompt mean differences
significant instead of 5% (docs/metrics.md).

Below MIN_PROMPTS paired prompts no interval is given ("too few prompts"): n prompts have only
C(2n-1, n) distinct resamples (3, 10 and 35 for n = 2, 3, 4; 126 for n = 5), too few for a
standard error of a ratio or a median, and the standard error would rest on 3 or fewer degrees
of freedom. The seed is fixed, so the same records always give the same interval. Imports
nothing of ours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

RESAMPLES = 10_000
SEED = 0
LEVEL = 0.95
MIN_PROMPTS = 5
METHOD = "paired bootstrap standard error, Student t with n-1 degrees of freedom"
_CHUNK_ELEMENTS = 1 << 23  # at most this many drawn indices in memory at once

Statistic = Callable[[np.ndarray], np.ndarray]  # resampled indices [r, n] -> statistic [r]


@dataclass(frozen=True)
class Interval:
    """A `level` interval of a statistic over `n` paired prompts."""

    low: float
    high: float
    n: int

    def excludes(self, value: float = 0.0) -> bool:
        return self.low > value or self.high < value


def method_info() -> dict[str, Any]:
    """How intervals are computed, as results files record it."""
    return {"method": METHOD, "level": LEVEL, "resamples": RESAMPLES, "seed": SEED,
            "min_prompts": MIN_PROMPTS, "unit": "prompt"}  # fmt: skip


def paired_interval(
    statistic: Statistic,
    n: int,
    *,
    ratio: bool = False,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> Interval | None:
    """The interval of `statistic` over n paired prompts. A `ratio` (a speedup, the change of a
    time between runs) is positive and multiplicative, so its interval is made on the log scale
    and mapped back: it stays positive and -50% weighs like +100%. None below MIN_PROMPTS, or
    when the statistic is not finite (or, for a ratio, not positive) on every resample: no
    interval rather than one computed on a biased subset."""
    if resamples < 2:
        raise ValueError(f"resamples must be at least 2, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n < MIN_PROMPTS:
        return None
    estimate = statistic(np.arange(n)[None, :])  # [1]
    rng = np.random.default_rng(seed)
    values = np.empty(resamples, dtype=np.float64)  # [R]
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        values[start:stop] = statistic(rng.integers(0, n, size=(stop - start, n)))
    if ratio:
        if not ((estimate > 0).all() and (values > 0).all()):
            return None
        estimate, values = np.log(estimate), np.log(values)
    if not (np.isfinite(estimate).all() and np.isfinite(values).all()):
        return None
    half = t_quantile(0.5 + level / 2, n - 1) * math.sqrt(n / (n - 1)) * float(values.std())
    low, high = float(estimate[0]) - half, float(estimate[0]) + half
    return Interval(math.exp(low), math.exp(high), n) if ratio else Interval(low, high, n)


def t_quantile(p: float, df: int) -> float:
    """The p quantile (p > 0.5) of Student's t with `df` degrees of freedom: bisection on its
    exact distribution function for integer df (Abramowitz & Stegun 26.7.3-4); beyond 1000
    degrees of freedom two Cornish-Fisher terms on the normal quantile (error below 1e-8)."""
    if not 0.5 < p < 1.0 or df < 1:
        raise ValueError(f"t_quantile needs 0.5 < p < 1 and df >= 1, got {p}, {df}")
    if df > 1000:
        z = NormalDist().inv_cdf(p)
        return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if _t_cdf(mid, df) < p else (low, mid)
    return (low + high) / 2


def _t_cdf(t: float, df: int) -> float:
    """P(T <= t) for t >= 0: (1 + A(t | df)) / 2 with A the closed form for integer df."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    term, total = 1.0, 1.0
    for k in range(1 if df % 2 else 0, df - 2, 2):  # the odd series starts at cos^1, even at 1
        term *= (k + 1) / (k + 2) * c2 if k else c2 / 2
        total += term
    if df % 2 == 0:
        a = math.sin(theta) * total
    elif df == 1:
        a = 2 * theta / math.pi
    else:
        a = 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    return (1 + a) / 2


def mean_difference(
    a: Sequence[float | None], b: Sequence[float | None], **kwargs: Any
) -> tuple[float, int, Interval | None]:
    """`(delta, n, interval)`: mean(b - a) over the n pairs where both are present, and its
    interval (None below MIN_PROMPTS pairs).

    `a` is the baseline, `b` the candidate, paired by position; None or NaN on either side drops
    the pair. Raises ValueError when the lengths differ or no pair is left. When every
    difference is the same value c, the interval is [c, c]."""
    if len(a) != len(b):
        raise ValueError(f"paired samples need equal lengths, got {len(a)} and {len(b)}")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if _present(x) and _present(y)]
    if not pairs:
        raise ValueError("no pair with both values present")
    diffs = np.array([y - x for x, y in pairs], dtype=np.float64)  # [n]
    delta = float(diffs.mean())
    if diffs.size >= MIN_PROMPTS and np.all(diffs == diffs[0]):  # no variation to resample
        return delta, diffs.size, Interval(delta, delta, diffs.size)
    interval = paired_interval(lambda idx: diffs[idx].mean(1), diffs.size, **kwargs)
    return delta, diffs.size, interval


def _present(value: float | None) -> bool:
    return value is not None and not math.isnan(value)
