"""Noise of wall-clock changes between two runs: a paired bootstrap over per-prompt records.

Absolute times on shared machines move by 10-15% between identical runs, so a change in
speedup or tokens/s means something only when it is larger than that spread. For one results
row this module pairs the prompts both runs finished (records.jsonl: same suite, prompt_id,
strategy and drafter), resamples those prompts with replacement (the same draw for both runs),
recomputes the row's aggregate in each run exactly as results.py defines it, and reports the
95% interval of the change in percent by the one interval method of `specbench_cli.bootstrap`
(the same as the run's own intervals; none below its minimum number of prompts). The package
calls a change "within noise" when that interval contains 0. Speedup uses each run's own
baseline on the same prompts, so machine-wide slowdowns cancel out; tokens/s does not, which is
why gates belong on speedup.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from specbench_cli.bootstrap import paired_interval
from specbench_cli.results import BASELINE, PromptRecord, throughput_wall_s

RowKey = tuple[str, str | None, str, str | None]  # strategy, drafter, suite, category


@dataclass(frozen=True)
class NoiseInterval:
    """95% interval of a change in percent (bootstrap.py's method) over `prompts` prompts."""

    low_pct: float
    high_pct: float
    prompts: int


Columns = dict[str, np.ndarray]  # per-prompt figures of one row in one run, each [P]


def _tokens_per_second(cols: Columns, idx: np.ndarray) -> np.ndarray:
    return cols["new_tokens"][idx].sum(1) / cols["wall_s"][idx].sum(1)


def _speedup(cols: Columns, idx: np.ndarray) -> np.ndarray:
    baseline = cols["baseline_new_tokens"][idx].sum(1) / cols["baseline_wall_s"][idx].sum(1)
    return _tokens_per_second(cols, idx) / baseline


# The results.py aggregate of each wall-clock metric, on bootstrap resamples idx [B, P] -> [B].
STATISTICS: dict[str, Callable[[Columns, np.ndarray], np.ndarray]] = {
    "tokens_per_second": _tokens_per_second,
    "speedup": _speedup,
    "wall_s": lambda cols, idx: cols["wall_s"][idx].sum(1),
    "time_to_first_token_s": lambda cols, idx: np.median(cols["ttft_s"][idx], axis=1),
}
WALL_CLOCK = frozenset(STATISTICS)  # the metrics whose changes get a noise interval


def _timed(record: PromptRecord) -> bool:
    """A finished record with the labels and numbers the statistics need."""
    if not isinstance(record, dict):
        return False
    labels = [record.get(name) for name in ("suite", "prompt_id", "strategy", "drafter")]
    numbers = [record.get(name) for name in ("new_tokens", "wall_s", "ttft_s")]
    return (
        record.get("status", "ok") == "ok"
        and all(isinstance(v, str | int | None) for v in labels)
        and all(isinstance(v, int | float) and math.isfinite(v) for v in numbers)
        and record["wall_s"] > 0
    )


class RunRecords:
    """A run's finished records by (suite, strategy, drafter) and prompt, plus its baseline."""

    def __init__(self, records: list[PromptRecord]) -> None:
        self.by_row: dict[tuple[Any, Any, Any], dict[Any, PromptRecord]] = {}
        self.baseline: dict[tuple[Any, Any], PromptRecord] = {}
        for r in filter(_timed, records):
            group = (r.get("suite"), r.get("strategy"), r.get("drafter"))
            self.by_row.setdefault(group, {})[r.get("prompt_id")] = r
            if r.get("strategy") == BASELINE:
                self.baseline[(r.get("suite"), r.get("prompt_id"))] = r

    def columns(self, key: RowKey, prompts: list[Any]) -> Columns:
        """Per-prompt figures of a row, in `prompts` order; baseline_* from the same run."""
        strategy, drafter, suite, _ = key
        rows = [self.by_row[(suite, strategy, drafter)][p] for p in prompts]
        cols = {name: [r[name] for r in rows] for name in ("new_tokens", "ttft_s")}
        cols["wall_s"] = [throughput_wall_s(r) for r in rows]
        base = [self.baseline.get((suite, p)) for p in prompts]
        if all(base):
            cols["baseline_new_tokens"] = [b["new_tokens"] for b in base]  # type: ignore[index]
            cols["baseline_wall_s"] = [throughput_wall_s(b) for b in base]  # type: ignore[arg-type]
        return {name: np.asarray(values, dtype=float) for name, values in cols.items()}


def _paired_prompts(key: RowKey, base: RunRecords, cand: RunRecords, metric: str) -> list[Any]:
    """Prompts of the row finished in both runs; for speed, also by both runs' baseline.

    metrics.py computes tokens/s and speedup over the prompts the baseline also finished.
    """
    strategy, drafter, suite, category = key
    in_base = base.by_row.get((suite, strategy, drafter), {})
    in_cand = cand.by_row.get((suite, strategy, drafter), {})
    prompts = [
        p
        for p, r in in_base.items()
        if p in in_cand and (category is None or r.get("category") == category)
    ]
    if metric in ("speedup", "tokens_per_second"):
        prompts = [
            p for p in prompts if (suite, p) in base.baseline and (suite, p) in cand.baseline
        ]
    return prompts


class PairedRecords:
    """The per-prompt records of a baseline run and a candidate run, for noise intervals."""

    def __init__(self, base: list[PromptRecord], cand: list[PromptRecord]) -> None:
        self.base, self.cand = RunRecords(base), RunRecords(cand)

    def interval(self, metric: str, key: RowKey) -> NoiseInterval | None:
        """95% interval of a wall-clock metric's change; None when not assessable.

        Each resample draws the same prompts from both runs, recomputes the row's aggregate in
        each (as results.py defines it: sums of tokens over sums of time, median TTFT) and takes
        their ratio; `bootstrap.paired_interval` makes the interval of that ratio (on the log
        scale), given here as a change in percent.
        """
        if metric not in STATISTICS:
            return None
        prompts = _paired_prompts(key, self.base, self.cand, metric)
        statistic = STATISTICS[metric]
        base, cand = self.base.columns(key, prompts), self.cand.columns(key, prompts)

        def after_over_before(idx: np.ndarray) -> np.ndarray:  # idx [R, P] -> [R]
            with np.errstate(divide="ignore", invalid="ignore"):
                return statistic(cand, idx) / statistic(base, idx)

        interval = paired_interval(after_over_before, len(prompts), ratio=True)
        if interval is None:  # too few paired prompts, or a zero time in a resample
            return None
        return NoiseInterval(100.0 * (interval.low - 1), 100.0 * (interval.high - 1), len(prompts))
