"""Run a sweep: models loaded once, every grid point against its own baseline, one run folder.

Each point is an ordinary run at that point's settings, made of the runner's pieces: the same
contenders (baseline first), warm-up, prompt-by-prompt interleaved decoding and record writing,
and the same aggregation. Every record is stamped with its point (`grid`), and every results
row carries the point's values (`grid`, plus `<strategy>.<param>` for swept strategy
parameters). The folder holds `sweep.yaml` (the grid, written before any decoding, so
`--resume DIR` continues with exactly these settings), `records.jsonl` and `results.json`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from specbench_cli.choices import NOISE_STREAM
from specbench_cli.config import RunConfig
from specbench_cli.errors import BadInput
from specbench_cli.interrupts import Interrupted, stop_signals_ignored
from specbench_cli.progress import NoProgress, ProgressReport
from specbench_cli.results import BASELINE, PromptRecord, ResultRow, ResultsFile, make_results
from specbench_cli.resume import finished_keys, latest_records, point_key, prompt_done
from specbench_cli.run_folder import RunFolder, RunOutcome
from specbench_cli.runner import (
    Models,
    decode_all,
    finish_environment,
    load_models,
    preflight,
    row_settings,
    run_environment,
    warm_up,
)
from specbench_cli.sweep_grid import Sweep, build_sweep

SWEEP_FILE = "sweep.yaml"


class PointFolder:
    """The run folder as one grid point writes to it: each record is stamped with the point."""

    def __init__(self, folder: RunFolder, point: dict[str, Any]) -> None:
        self.folder = folder
        self.point = point

    def append(self, record: PromptRecord) -> None:
        record["grid"] = dict(self.point)
        self.folder.append(record)


@dataclass
class PointPlan:
    point: dict[str, Any]
    config: RunConfig
    suites: list[Any]  # the suites with only the prompts still to run at this point
    prompts: int  # how many prompts that is

    @property
    def contender_count(self) -> int:
        return 1 + len(self.config.strategies)


def contender_labels(cfg: RunConfig) -> list[tuple[str, str]]:
    """(strategy label, drafter label) of each contender a point builds, baseline first."""
    from specbench_cli.contenders import drafter_label
    from specbench_cli.strategies import parse_strategy_spec

    drafter = drafter_label(cfg)
    return [(BASELINE, "none")] + [(parse_strategy_spec(s).label, drafter)
                                   for s in cfg.strategies]  # fmt: skip


def plan(sweep: Sweep, suites: list[Any], records: list[PromptRecord]) -> list[PointPlan]:
    """What is left to run per point: prompts some contender has not finished there."""
    done = finished_keys(records)
    plans = []
    for point in sweep.points():
        cfg = sweep.point_config(point)
        labels = contender_labels(cfg)
        todo = [replace(s, prompts=tuple(p for p in s.prompts
                                         if not prompt_done(done, point, s.name, p.id, labels)))
                for s in suites]  # fmt: skip
        count = sum(len(s.prompts) for s in todo)
        if count:
            plans.append(PointPlan(point, cfg, todo, count))
    return plans


def open_folder(sweep: Sweep, resume: Path | None) -> RunFolder:
    """A new folder with the sweep written into it, or the folder of the sweep to resume."""
    if resume is not None:
        return RunFolder.reopen(resume)
    try:
        folder = RunFolder.claim(sweep.base.output)
    except BadInput as exc:
        if sweep.base.output and (Path(sweep.base.output) / SWEEP_FILE).is_file():
            raise BadInput(f"{exc}, or continue it: specbench sweep --resume "
                           f"{sweep.base.output}") from None  # fmt: skip
        raise
    text = yaml.safe_dump(sweep.to_dict(), sort_keys=False)
    (folder.path / SWEEP_FILE).write_text(text)
    return folder


def load_resumed(resume: Path) -> Sweep:
    """The sweep an earlier `specbench sweep` wrote into `resume`."""
    path = Path(resume) / SWEEP_FILE
    if not path.is_file():
        raise BadInput(f"--resume {resume}: not a sweep folder (no {SWEEP_FILE})")
    sweep = build_sweep(path, {}, {}, None)
    sweep.base = replace(sweep.base, output=str(resume))
    return sweep


def execute_sweep(sweep: Sweep, resume: Path | None = None,
                  progress: ProgressReport | None = None) -> RunOutcome:  # fmt: skip
    """Run what is left of the sweep and write the folder's results. Bad input raises before
    any model loads; a stop signal ends the sweep with the finished records and results."""
    progress = progress or NoProgress()
    suites, target_src, draft_src = preflight(sweep.base)
    with open_folder(sweep, resume) as folder:
        plans = plan(sweep, suites, folder.records())
        models = load_models(sweep.base, target_src, draft_src, progress)
        env = run_environment(models, progress)
        total = sum(p.prompts * p.contender_count * p.config.rounds for p in plans)
        finished = 0
        stop: Interrupted | None = None
        try:
            for p in plans:
                run_point(p, models, folder, PointProgress(progress, finished, total, p.point))
                finished += p.prompts * p.contender_count * p.config.rounds
        except Interrupted as exc:
            stop = exc
        with stop_signals_ignored():  # a second signal must not lose the results of the first
            progress.advance(finished, total, "done" if stop is None else "stopped")
            env = finish_environment(env, models, progress)
            data = sweep_results(sweep, suites, folder.records(), models.backend, env, stop)
            folder.write_results(data)
        return RunOutcome(folder.path, data, stop)


def run_point(p: PointPlan, models: Models, folder: RunFolder, progress: ProgressReport) -> None:
    """One grid point: its contenders (baseline first), warm-up, then its prompts."""
    from specbench_cli.contenders import build_contenders

    contenders = build_contenders(p.config, models.target, models.draft, models.vocab,
                                  models.backend)  # fmt: skip
    tokenizer = models.target.tokenizer
    warm_up(contenders, p.suites, tokenizer, p.config)
    decode_all(contenders, p.suites, tokenizer, p.config, PointFolder(folder, p.point),
               progress)  # type: ignore[arg-type]


class PointProgress:
    """The whole sweep's progress from one point's: shifted counts, the point in the text."""

    def __init__(self, progress: ProgressReport, before: int, total: int,
                 point: dict[str, Any]) -> None:  # fmt: skip
        self.progress, self.before, self.total = progress, before, total
        self.label = " ".join(f"{k}={v}" for k, v in point.items())

    def stage(self, text: str) -> None:
        self.progress.stage(f"[{self.label}] {text}")

    def note(self, text: str) -> None:
        self.progress.note(text)

    def advance(self, done: int, total: int, current: str, rate: str = "") -> None:
        if current != "done":
            self.progress.advance(self.before + done, self.total, f"[{self.label}] {current}",
                                  rate)  # fmt: skip


def sweep_results(sweep: Sweep, suites: list[Any], records: list[PromptRecord], backend: str,
                  env: dict[str, Any], stop: Interrupted | None) -> ResultsFile:  # fmt: skip
    """Rows per point (each aggregated like a run), stamped with the point's values."""
    from specbench_cli.bootstrap import method_info
    from specbench_cli.metrics import timing_noise

    rows = sweep_rows(sweep, records, suites, backend)
    config = {**sweep.to_dict(), "noise_mode": NOISE_STREAM}  # as a run records it
    noise = timing_noise(latest_records(records))
    data = make_results(config, env, rows, method_info(),
                        stop.name if stop else None, noise)  # fmt: skip
    data["sweep"] = {"axes": {a: v for a, v in sweep.axes.items() if len(v) > 1},
                     "strategy_params": sorted(f"{n}.{k}" for n, k in sweep.swept_params()),
                     "points": sweep.points()}  # fmt: skip
    return data


def sweep_rows(sweep: Sweep, records: list[PromptRecord], suites: list[Any],
               backend: str) -> list[ResultRow]:  # fmt: skip
    from specbench_cli.metrics import aggregate

    by_point: dict[str, list[PromptRecord]] = defaultdict(list)
    for record in latest_records(records):
        by_point[point_key(record.get("grid"))].append(record)
    swept = sweep.swept_params()
    rows: list[ResultRow] = []
    for point in sweep.points():
        point_records = by_point.get(point_key(point))
        if not point_records:
            continue
        cfg = sweep.point_config(point)
        settings = {s.name: row_settings(cfg, cfg.token_budget(s.max_new_tokens), backend)
                    for s in suites}  # fmt: skip
        for row in aggregate(point_records, strategy_info(cfg), cfg.k):
            row.update(settings.get(row["suite"], {}))  # type: ignore[typeddict-item]
            params = {f"{row['strategy_name']}.{key}": value
                      for key, value in row["params"].items()
                      if (row["strategy_name"], key) in swept}  # fmt: skip
            row["grid"] = {**point, **params}
            rows.append(row)
    return rows


def strategy_info(cfg: RunConfig) -> dict[str, dict[str, Any]]:
    """Registry name, parameters and draft shape by strategy label (as
    `contenders.strategy_info`), from the configuration alone."""
    from specbench_cli.contenders import draft_shape
    from specbench_cli.drafters import parse_drafter_spec
    from specbench_cli.strategies import parse_strategy_spec

    _, drafter_params = parse_drafter_spec(cfg.effective_drafter())
    info: dict[str, dict[str, Any]] = {BASELINE: {"name": BASELINE, "params": {}, "shape": {}}}
    for spec in cfg.strategies:
        strategy = parse_strategy_spec(spec)
        info[strategy.label] = {"name": strategy.name, "params": strategy.params,
                                "shape": draft_shape(strategy, drafter_params, cfg.k)}
    return info

