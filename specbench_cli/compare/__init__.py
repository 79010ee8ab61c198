"""Compare results files: align their rows, measure each metric's change, apply thresholds.

Pure logic for `specbench compare`: reads results files and the records beside them through
`results.py`, returns a `Verdict`, never prints (`commands/compare.py` renders and exits).
`metrics.py` names the metrics and their directions, `noise.py` estimates wall-clock noise,
`gate.py` reads gate files.

- The first file is the baseline, each other file a candidate. Rows align on (strategy, drafter,
  suite, category); a row in only one of the two files is a warning.
- change_pct = (candidate - baseline) / |baseline| x 100; `metrics.py` names the metrics and
  says which direction is better for each.
- A threshold `METRIC=PCT` fails a candidate worse than the baseline by more than PCT percent.
  A baseline of 0 has no relative change: any worsening above ZERO_BASELINE_EPS (absolute)
  fails, e.g. divergence.kl from 0 to 1e-6. Equal values pass, so `acceptance_rate=0%` demands
  an exact reproduction.
- A gate never passes on a value it could not check: a gated metric that is missing, null or
  NaN on one side of a row present in both files fails (exit 1), and so does every baseline
  row the candidate lacks. A metric missing on both sides does not apply to that row (the
  baseline row has no acceptance rate) and is not gated there.
- Wall-clock metrics get a paired-bootstrap interval from the records (`noise.py`), and runs
  with repeated rounds state their own noise floor (`timing_noise`); a change whose interval
  contains 0, or whose size is at most the larger of the two runs' noise floors, is "within
  noise" and only warns. Other metrics are deterministic under a fixed seed and compared
  exactly.
- Runs with different SAMPLING_KEYS are bad input unless allow_config_diff (then a warning).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from specbench_cli.compare.metrics import DETERMINISTIC, higher_is_better, row_metrics
from specbench_cli.compare.noise import WALL_CLOCK, NoiseInterval, PairedRecords, RowKey
from specbench_cli.errors import BadInput
from specbench_cli.results import PromptRecord, ResultRow, ResultsFile, read_records, read_results

# RunConfig fields that change what is generated, and environment fields that change timings.
SAMPLING_KEYS = (
    "temperature",
    "top_k",
    "top_p",
    "k",
    "max_new_tokens",
    "seed",
    "target",
    "draft",
    "dtype",
    "noise_mode",
    "batch_size",
)
# values of keys that older result files do not record
CONFIG_DEFAULTS = {"noise_mode": "race", "batch_size": 1}
HARDWARE_KEYS = ("device", "cpu", "gpu", "cpu_threads")

ZERO_BASELINE_EPS = 1e-9  # absolute worsening tolerated when the baseline value is exactly 0
PCT_TOLERANCE = 1e-9  # percentage points: float rounding never turns "exactly 5%" into "> 5%"


@dataclass
class MetricChange:
    """One metric of one aligned row: both values, the change, and what the gate made of it."""

    metric: str
    higher_is_better: bool
    baseline: float | None
    candidate: float | None
    change_pct: float | None  # None when a value is missing, or the baseline is 0 and moved
    deterministic: bool  # compared exactly: reproduces under a fixed seed
    noise: NoiseInterval | None  # wall-clock metrics with paired per-prompt records only
    within_noise: bool | None  # the interval contains 0 or the change is under the noise
    # floor; None when not assessed
    noise_floor_pct: float | None  # the larger timing_noise of the two runs, in percent
    threshold_pct: float | None  # the gate on this metric, if any
    beyond_threshold: bool  # worse than the gate allows
    failed: bool  # beyond the threshold and not within noise, or gated and missing: exit 1
    status: str  # regression | missing | same | within noise | better | worse | n/a


@dataclass
class RowComparison:
    """One (strategy, drafter, suite, category) row present in the baseline and a candidate."""

    candidate: str  # label (path as given) of the candidate file
    strategy: str
    drafter: str | None
    suite: str
    category: str | None
    changes: list[MetricChange]

    @property
    def label(self) -> str:
        return format_key((self.strategy, self.drafter, self.suite, self.category))


@dataclass
class Verdict:
    """Everything compare found: rows to show, failures that set the exit code, warnings."""

    baseline: str
    candidates: list[str]
    thresholds: dict[str, float]
    rows: list[RowComparison]
    failures: list[str]  # one line each
    warnings: list[str]  # one line each

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class Run:
    """One results file, its rows by key, and its per-prompt records."""

    label: str
    results: ResultsFile
    rows: dict[RowKey, ResultRow]
    records: list[PromptRecord]


# --- reading runs ----------------------------------------------------------------------------


def format_key(key: RowKey) -> str:
    """`strategy / drafter / suite[ / category]`, the way rows are named in messages."""
    return " / ".join(str(part) for part in key if part is not None)


def _row_key(row: Any, where: str) -> RowKey:
    """The alignment key of a results row; bad input when its labels are missing or not text."""
    labels = {"strategy": str, "suite": str, "drafter": str | None, "category": str | None}
    if not isinstance(row, dict) or not all(isinstance(row.get(n), t) for n, t in labels.items()):
        raise BadInput(
            f"{where}: needs text labels 'strategy', 'suite' (and 'drafter', 'category')"
        )
    return row["strategy"], row.get("drafter"), row["suite"], row.get("category")


def load_run(path: str) -> Run:
    """Read a results file (or run folder) and the records.jsonl beside it."""
    results = read_results(path)
    rows: dict[RowKey, ResultRow] = {}
    for i, row in enumerate(results["results"]):
        key = _row_key(row, f"{path}: results[{i}]")
        if key in rows:
            raise BadInput(f"{path}: two results rows for {format_key(key)}")
        rows[key] = row
    return Run(path, results, rows, read_records(path))


# --- comparing -------------------------------------------------------------------------------


def _change_pct(before: float, after: float) -> float | None:
    """Relative change in percent; None when the baseline is 0 and the candidate is not, or
    when a value is infinite (an infinite KL)."""
    if before == after:
        return 0.0
    if before == 0 or not math.isfinite(before) or not math.isfinite(after):
        return None
    return 100.0 * (after - before) / abs(before)


def _beyond_threshold(before: float, after: float, higher: bool, pct: float) -> bool:
    """Worse than `pct` percent allows (absolute ZERO_BASELINE_EPS when the baseline is 0)."""
    improvement = after - before if higher else before - after
    if before == 0:
        return -improvement > ZERO_BASELINE_EPS
    return -improvement / abs(before) * 100.0 > pct + PCT_TOLERANCE


def _status(improvement: float | None, failed: bool, within_noise: bool | None) -> str:
    """One word for the table: the gate's outcome first, then the direction of the change."""
    if failed:
        return "regression" if improvement is not None else "missing"
    if improvement is None:
        return "n/a"
    if improvement == 0:
        return "same"
    if within_noise:
        return "within noise"
    return "better" if improvement > 0 else "worse"


def compare_metric(
    metric: str,
    before: float | None,
    after: float | None,
    noise: NoiseInterval | None,
    threshold: float | None,
    noise_floor_pct: float | None = None,
) -> MetricChange:
    """Change, noise verdict and gate outcome of one metric of one row; `noise_floor_pct`
    applies to wall-clock metrics only."""
    higher = bool(higher_is_better(metric))
    known = before is not None and after is not None
    beyond = known and threshold is not None and _beyond_threshold(before, after, higher, threshold)
    floor = noise_floor_pct if metric in WALL_CLOCK else None
    within_noise = _within_noise(noise, _change_pct(before, after) if known else None, floor)
    improvement = (after - before if higher else before - after) if known else None
    if improvement is not None and improvement != improvement:  # inf - inf: the same value
        improvement = 0.0
    unchecked = threshold is not None and (before is None) != (after is None)
    failed = (beyond and not within_noise) or unchecked
    return MetricChange(
        metric=metric,
        higher_is_better=higher,
        baseline=before,
        candidate=after,
        change_pct=_change_pct(before, after) if known else None,
        deterministic=metric.partition(".")[0] in DETERMINISTIC,
        noise=noise,
        within_noise=within_noise,
        noise_floor_pct=floor,
        threshold_pct=threshold,
        beyond_threshold=beyond,
        failed=failed,
        status=_status(improvement, failed, within_noise),
    )


def _within_noise(noise: NoiseInterval | None, change_pct: float | None,
                  floor: float | None) -> bool | None:  # fmt: skip
    """The interval contains 0, or the change is no larger than the noise floor; None when
    neither is known."""
    if noise is None and floor is None:
        return None
    in_interval = noise is not None and noise.low_pct <= 0.0 <= noise.high_pct
    under_floor = floor is not None and change_pct is not None and abs(change_pct) <= floor
    return in_interval or under_floor


def noise_floor_pct(base: Run, cand: Run) -> float | None:
    """The larger of the two runs' timing_noise (overall, in percent); None when neither ran
    repeated rounds."""
    floors = [(run.results.get("timing_noise") or {}).get("overall") for run in (base, cand)]
    known = [100.0 * f for f in floors if isinstance(f, int | float) and math.isfinite(f)]
    return max(known) if known else None


def _compare_row(
    key: RowKey,
    base: Run,
    cand: Run,
    records: PairedRecords,
    thresholds: dict[str, float],
) -> RowComparison:
    """All metrics reported by either side of one aligned row."""
    before = row_metrics(base.rows[key], f"{base.label}: {format_key(key)}")
    after = row_metrics(cand.rows[key], f"{cand.label}: {format_key(key)}")
    metrics = [*before, *(m for m in after if m not in before)]
    floor = noise_floor_pct(base, cand)
    changes = [
        compare_metric(m, before.get(m), after.get(m), records.interval(m, key),
                       thresholds.get(m), floor)  # fmt: skip
        for m in metrics
    ]
    return RowComparison(cand.label, *key, changes)


def describe_change(row: RowComparison, change: MetricChange) -> str:
    """One line naming the row, the metric and how it moved, for failures and warnings."""
    moved = " -> ".join("missing" if v is None else f"{v:.4g}"
                        for v in (change.baseline, change.candidate))
    if change.change_pct is not None:
        moved += f" ({change.change_pct:+.1f}%)"
    return f"{row.candidate}: {row.label}: {change.metric} {moved}"


def _row_messages(
    row: RowComparison, base: str, cand_row: ResultRow
) -> tuple[list[str], list[str]]:
    """Failures and warnings of a compared row: its gated metrics, its failed prompts."""
    failures, warnings = [], []
    if isinstance(failed := cand_row.get("num_failed"), int) and failed > 0:
        warnings.append(f"{row.candidate}: {row.label}: {failed} prompts failed")
    for change in row.changes:
        if change.threshold_pct is None:
            continue
        gate = f"the {change.threshold_pct:g}% gate"
        if change.status == "missing":
            side = base if change.baseline is None else row.candidate
            failures.append(f"{describe_change(row, change)}: missing (null or NaN) in {side}, "
                            f"so {gate} cannot be checked")
        elif change.failed:
            failures.append(f"{describe_change(row, change)} is worse than {gate}")
        elif change.beyond_threshold:
            warnings.append(f"{describe_change(row, change)} is beyond {gate} but within "
                            f"noise ({_noise_evidence(change)}), not failed")  # fmt: skip
    return failures, warnings


def _noise_evidence(change: MetricChange) -> str:
    """Why a change is within noise: its interval, the runs' noise floor, or both."""
    parts = []
    if change.noise is not None:
        parts.append(f"95% interval {change.noise.low_pct:+.1f}%..{change.noise.high_pct:+.1f}%")
    if change.noise_floor_pct is not None:
        parts.append(f"timing noise floor {change.noise_floor_pct:.1f}%")
    return ", ".join(parts)


def _differences(base: Run, cand: Run, section: str, keys: tuple[str, ...]) -> str:
    """`key a vs b; ...` for the keys of a results-file section on which two runs differ."""
    before, after = (run.results.get(section) for run in (base, cand))
    before, after = (
        {**CONFIG_DEFAULTS, **part} if isinstance(part, dict) else {} for part in (before, after)
    )
    return "; ".join(
        f"{key} {before.get(key)!r} vs {after.get(key)!r}"
        for key in keys
        if before.get(key) != after.get(key)
    )


def _check_comparable(base: Run, cand: Run, allow_config_diff: bool) -> list[str]:
    """Bad input when sampling settings differ (a warning if allowed); warn on other hardware."""
    pair = f"{base.label} and {cand.label}"
    warnings = []
    if sampling := _differences(base, cand, "config", SAMPLING_KEYS):
        if not allow_config_diff:
            raise BadInput(
                f"{pair} ran with different settings: {sampling} "
                "(pass --allow-config-diff to compare them anyway)"
            )
        warnings.append(f"{pair} ran with different settings: {sampling}")
    if hardware := _differences(base, cand, "environment", HARDWARE_KEYS):
        warnings.append(
            f"{pair} ran on different hardware ({hardware}): absolute times are "
            "not comparable, same-run ratios such as speedup are"
        )
    return warnings


def _unmatched_rows(base: Run, cand: Run, gated: bool) -> tuple[list[str], list[str]]:
    """(failures, warnings) for rows that only one of the two files has: under a gate, a
    baseline row the candidate lacks fails (its gated metrics cannot be checked)."""
    failures = [
        f"{cand.label}: {format_key(key)} is in the baseline but missing from the candidate, "
        "so its gated metrics cannot be checked"
        for key in base.rows
        if key not in cand.rows and gated
    ]
    warnings = [
        f"{format_key(key)} is in {run.label} but not in {other.label}, not compared"
        for run, other in ((base, cand), (cand, base))
        for key in run.rows
        if key not in other.rows and not (gated and run is base)
    ]
    return failures, warnings


def _check_gated_metrics_reported(rows: list[RowComparison], thresholds: dict[str, float]) -> None:
    """A gate on a metric that no compared row reports in either file names nothing to check
    (a typo, or a quality metric of another suite): bad input rather than a silent pass."""
    for metric in thresholds:
        if not any(c.metric == metric for row in rows for c in row.changes):
            raise BadInput(f"threshold on {metric}, but no compared row reports it")


def compare_runs(
    paths: list[str], thresholds: dict[str, float], allow_config_diff: bool = False
) -> Verdict:
    """Compare every candidate (paths[1:]) with the baseline (paths[0]) and apply thresholds."""
    if len(paths) < 2:
        raise BadInput("compare needs a baseline and at least one candidate results file")
    base, *cands = runs = [load_run(path) for path in paths]
    rows: list[RowComparison] = []
    failures: list[str] = []
    warnings = [
        f"{run.label} is from an interrupted run"
        for run in runs
        if run.results.get("status") == "interrupted"
    ]
    for cand in cands:
        warnings += _check_comparable(base, cand, allow_config_diff)
        common = [key for key in base.rows if key in cand.rows]
        if not common:
            raise BadInput(
                f"{base.label} and {cand.label} have no strategy/drafter/suite rows in common"
            )
        unmatched_failures, unmatched_warnings = _unmatched_rows(base, cand, bool(thresholds))
        failures += unmatched_failures
        warnings += unmatched_warnings
        if WALL_CLOCK.intersection(thresholds) and not (base.records and cand.records):
            warnings.append(
                f"no records.jsonl beside {base.label} or {cand.label}: "
                "wall-clock changes are gated without a noise estimate"
            )
        records = PairedRecords(base.records, cand.records)
        for key in common:
            row = _compare_row(key, base, cand, records, thresholds)
            row_failures, row_warnings = _row_messages(row, base.label, cand.rows[key])
            rows.append(row)
            failures += row_failures
            warnings += row_warnings
    _check_gated_metrics_reported(rows, thresholds)
    return Verdict(base.label, [c.label for c in cands], thresholds, rows, failures, warnings)
