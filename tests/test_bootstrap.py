"""The one interval method (specbench_cli/bootstrap.py): its t quantiles, its limits, and its
coverage on synthetic paired data with a known zero effect.

Run: .venv/bin/python -m pytest tests/test_bootstrap.py -q
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from specbench_cli.bootstrap import MIN_PROMPTS, mean_difference, paired_interval, t_quantile

NOMINAL = 0.05
TRIALS = 2000  # the share of false positives has a standard deviation of 0.5 points


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 9, 29, 100, 999, 1001, 50_000])
def test_t_quantiles_match_scipy(df):
    for p in (0.9, 0.95, 0.975, 0.995):
        assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-7)


def _zero_effect_pairs(rng: np.random.Generator, n: int, kind: str) -> tuple[np.ndarray, ...]:
    """(baseline, candidate) per prompt, exchangeable within each prompt: no effect."""
    if kind == "normal":
        level = rng.normal(0.0, 1.0, n)
        return level + rng.normal(0.0, 0.5, n), level + rng.normal(0.0, 0.5, n)
    level = rng.uniform(0.0, 1.0, n)  # bounded scores such as ROUGE-L, clipped at 0 and 1
    return tuple(np.clip(level + rng.normal(0.0, 0.15, n), 0.0, 1.0) for _ in range(2))


@pytest.mark.parametrize("kind", ["normal", "bounded"])
@pytest.mark.parametrize("n", [5, 10, 30])
def test_mean_difference_calls_about_5_percent_of_null_effects_significant(n, kind):
    rng = np.random.default_rng(n)
    significant = 0
    for trial in range(TRIALS):
        base, cand = _zero_effect_pairs(rng, n, kind)
        _, _, interval = mean_difference(base, cand, resamples=1000, seed=trial)
        significant += interval.excludes(0.0)
    assert abs(significant / TRIALS - NOMINAL) < 0.02


@pytest.mark.parametrize("n", [5, 10, 30])
def test_speedup_ratio_calls_about_5_percent_of_equal_speeds_different(n):
    """The speedup statistic (pooled tokens/s over pooled tokens/s) of two contenders that run
    at the same speed up to per-prompt noise excludes 1 about 5% of the time."""
    rng = np.random.default_rng(100 + n)
    different = 0
    for trial in range(TRIALS):
        tokens = rng.integers(16, 256, n).astype(float)
        difficulty = rng.lognormal(0.0, 0.3, n)
        wall_a, wall_b = (tokens / (difficulty * rng.lognormal(0.0, 0.1, n)) for _ in range(2))

        def speedup(idx: np.ndarray, a=wall_a, b=wall_b) -> np.ndarray:
            return b[idx].sum(1) / a[idx].sum(1)  # the same tokens on both sides cancel

        interval = paired_interval(speedup, n, ratio=True, resamples=1000, seed=trial)
        different += interval.excludes(1.0)
    assert abs(different / TRIALS - NOMINAL) < 0.025


def test_mean_difference_is_the_paired_t_interval():
    rng = np.random.default_rng(3)
    a = rng.normal(size=12)
    b = a + 0.3 + rng.normal(0.0, 0.4, 12)
    delta, n, interval = mean_difference(a, b)
    d = b - a
    half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n)
    assert (delta, n) == (pytest.approx(d.mean()), 12)
    assert interval.low == pytest.approx(delta - half, rel=0.03)
    assert interval.high == pytest.approx(delta + half, rel=0.03)
    assert mean_difference(a, b) == (delta, n, interval)  # fixed seed: deterministic


def test_too_few_prompts_give_no_interval():
    """Two prompts, both a bit worse (the case that used to be starred): no interval."""
    assert mean_difference([0.30, 0.41], [0.275, 0.397]) == (pytest.approx(-0.019), 2, None)
    assert paired_interval(lambda idx: idx.mean(1), MIN_PROMPTS - 1) is None
    assert paired_interval(lambda idx: idx.mean(1), MIN_PROMPTS) is not None


def test_constant_and_missing_differences():
    a = list(range(8))
    assert mean_difference(a, a)[2].excludes(0.0) is False
    delta, n, interval = mean_difference(a, [x + 0.25 for x in a])
    assert (delta, n, interval.low, interval.high) == (0.25, 8, 0.25, 0.25)
    delta, n, interval = mean_difference([1.0, None, 2.0], [1.0, 5.0, float("nan")])
    assert (delta, n, interval) == (0.0, 1, None)
    with pytest.raises(ValueError, match="equal lengths"):
        mean_difference([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="no pair"):
        mean_difference([None], [1.0])
    with pytest.raises(ValueError, match="level"):
        mean_difference(list(range(6)), [0, 2, 1, 4, 3, 6], level=1.0)


def test_ratio_intervals_are_made_on_the_log_scale():
    rng = np.random.default_rng(5)
    ratios = np.exp(rng.normal(0.0, 1.0, 6))  # very noisy: a plain interval would go below 0
    interval = paired_interval(lambda idx: np.exp(np.log(ratios[idx]).mean(1)), 6, ratio=True)
    log_interval = paired_interval(lambda idx: np.log(ratios[idx]).mean(1), 6)
    assert 0 < interval.low < 1 < interval.high
    assert (np.log(interval.low), np.log(interval.high)) == pytest.approx(
        (log_interval.low, log_interval.high))
    assert paired_interval(lambda idx: ratios[idx].mean(1) - 5.0, 6, ratio=True) is None


def test_a_statistic_that_is_not_finite_gives_no_interval():
    wall = np.array([1.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    with np.errstate(divide="ignore"):
        assert paired_interval(lambda idx: 1.0 / wall[idx].min(1), wall.size) is None
