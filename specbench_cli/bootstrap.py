"""The one paired bootstrap behind every interval specbench reports.

Speedup intervals, quality deltas and `compare`'s noise check all resample the same unit: the
prompt. Each resample draws n prompt indices with replacement (the same draw for both sides of a
pair), recomputes the statistic from those prompts, and the interval is the percentile interval
of the resampled statistics (Efron & Tibshirani, ch. 13). The seed is fixed, so the same records
always give the same interval. Pure numpy; imports nothing of ours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

RESAMPLES = 10_000
SEED = 0
_CHUNK_ELEMENTS = 1 << 23  # at most this many drawn indices in memory at once

Statistic = Callable[[np.ndarray], np.ndarray]  # resampled indices [r, n] -> statistic [r]


def paired_bootstrap(
    statistic: Statistic,
    n: int,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """`(low, high)`: the `confidence` percentile interval of `statistic` over resamples of n
    paired prompts. Resamples whose statistic is not finite (a zero denominator) are dropped;
    if any are, the interval is `(nan, nan)` rather than one computed on a biased subset."""
    if n < 1:
        raise ValueError(f"the bootstrap needs at least one prompt, got {n}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    values = np.empty(resamples, dtype=np.float64)  # [R]
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        values[start:stop] = statistic(rng.integers(0, n, size=(stop - start, n)))
    if not np.isfinite(values).all():
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def mean_difference(
    a: Sequence[float | None], b: Sequence[float | None], **kwargs: object
) -> tuple[float, float, float]:
    """`(delta, low, high)`: mean(b - a) over pairs where both are present, and its interval.

    `a` is the baseline, `b` the candidate, paired by position; None or NaN on either side drops
    the pair. Raises ValueError when the lengths differ or no pair is left. Identical arrays
    give (0, 0, 0); b = a + c gives (c, c, c)."""
    if len(a) != len(b):
        raise ValueError(f"paired samples need equal lengths, got {len(a)} and {len(b)}")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if _present(x) and _present(y)]
    if not pairs:
        raise ValueError("no pair with both values present")
    diffs = np.array([y - x for x, y in pairs], dtype=np.float64)  # [n]
    delta = float(diffs.mean())
    if np.all(diffs == diffs[0]):  # every resample has the same mean
        return delta, delta, delta
    low, high = paired_bootstrap(lambda idx: diffs[idx].mean(1), diffs.size, **kwargs)
    return delta, low, high


def _present(value: float | None) -> bool:
    return value is not None and not math.isnan(value)
