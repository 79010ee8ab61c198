"""Paired bootstrap confidence intervals for quality deltas (strategy minus baseline).

Both arrays hold one score per prompt, in the same prompt order, so the pairs are resampled
together: each resample draws n prompt indices with replacement and takes the mean of b - a over
them. The interval is the percentile interval of those means (Efron & Tibshirani, ch. 13).
Limit cases: identical arrays give (0, 0, 0); b = a + c gives (c, c, c).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_CHUNK_ELEMENTS = 1 << 23  # resamples are drawn in chunks of at most this many indices


def paired_bootstrap(
    a: Sequence[float | None],
    b: Sequence[float | None],
    n_resamples: int = 10000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Return (delta, low, high): mean(b - a) and its `confidence` percentile bootstrap interval.

    `a` is the baseline, `b` the candidate, paired by position. Pairs where either side is None
    or NaN (a failed or unscorable prompt) are dropped. Raises ValueError when the lengths differ,
    no pair is left, or the settings are out of range. Deterministic for a given `seed`.
    """
    if len(a) != len(b):
        raise ValueError(f"paired_bootstrap needs equal lengths, got {len(a)} and {len(b)}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if _present(x) and _present(y)]
    if not pairs:
        raise ValueError("paired_bootstrap needs at least one pair with both scores present")
    diffs = np.array([y - x for x, y in pairs], dtype=np.float64)  # [n]
    n = diffs.size
    delta = float(diffs.mean())
    if np.all(diffs == diffs[0]):  # every resample has the same mean; skip the work
        return delta, delta, delta
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples, dtype=np.float64)  # [R]
    chunk = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))  # [r, n]
        means[start:stop] = diffs[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return delta, float(low), float(high)


def _present(value: float | None) -> bool:
    return value is not None and not math.isnan(value)
