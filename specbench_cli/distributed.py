"""Runs split over processes (`torchrun`, `accelerate launch`) and resumed runs (`--resume`).

Sharding: the unit is a group of `--batch-size` prompts (one prompt at batch size 1). The groups
still to run, in suite order, are dealt out round-robin: the i-th goes to rank i mod world size.
Every contender of a group runs in the process that owns it, back to back, so speedups stay
paired; per-prompt seeds come from the run seed, the suite and the prompt, never the rank, so a
greedy or seeded run decodes the same tokens in any number of processes.

Rank 0 alone claims the run folder and writes `records.jsonl` and `results.json`; the others
append to their own records files, merged by rank 0 at the end (rank_files.py). Every process
validates the settings before it loads a model; only rank 0 prints the error.

A process that dies takes the run down (the launcher stops the others with SIGTERM): rank 0
still merges every record written so far and writes `results.json` with status `incomplete`
and the prompts no process finished under `missing`, and exits 1. `specbench run --resume DIR`
(one process or many) runs the groups that lack a finished record for some contender, with the
settings the run folder holds, and rewrites the results.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from specbench_cli.config import FIELDS, RunConfig, build_config, to_yaml
from specbench_cli.errors import BadInput
from specbench_cli.interrupts import Interrupted, stop_signals_ignored
from specbench_cli.launch import (
    Launch,
    all_ready,
    current_launch,
    join_group,
    leave_group,
    share_from_rank0,
)
from specbench_cli.progress import ProgressReport
from specbench_cli.rank_files import (
    RankRecords,
    clear_rank_infos,
    merge_records,
    read_rank_infos,
    wait_for_ranks,
    write_rank_info,
)
from specbench_cli.results import RESULTS_NAME, PromptRecord, read_results
from specbench_cli.resume import finished_keys, prompt_done
from specbench_cli.run_folder import RUN_CONFIG_NAME, RunFolder, RunOutcome
from specbench_cli.runner import (
    decode_all,
    finish_environment,
    load_models,
    preflight,
    prompt_groups,
    run_environment,
    run_results,
    warm_up,
)
from specbench_cli.sweep import contender_labels

Group = tuple[str, int]  # (suite name, group index in the suite)


def resumed_config(folder: Path, settings: dict[str, Any]) -> RunConfig:
    """The settings of the run in `folder` (its `run.yaml`, else its results' config); any
    other setting given with `--resume` is bad input."""
    given = sorted(key for key, value in settings.items() if value not in (None, []))
    if given:
        raise BadInput(f"--resume takes the settings of the run it continues; remove "
                       f"{', '.join(given)}")  # fmt: skip
    if (folder / RUN_CONFIG_NAME).is_file():
        return build_config(folder / RUN_CONFIG_NAME, {"output": str(folder)})
    if (folder / RESULTS_NAME).is_file():
        config = read_results(folder)["config"]
        values = {key: value for key, value in config.items() if key in FIELDS}
        return build_config(None, {**values, "output": str(folder)})
    raise BadInput(f"--resume {folder}: not a run folder (no {RUN_CONFIG_NAME} or "
                   f"{RESULTS_NAME})")  # fmt: skip


def pending_groups(suites: list[Any], cfg: RunConfig, records: list[PromptRecord]) -> list[Group]:
    """Groups in which some prompt lacks a finished record for some contender."""
    done = finished_keys(records)
    labels = contender_labels(cfg)
    return [(suite.name, index) for suite in suites
            for index, group in enumerate(prompt_groups(suite, cfg.batch_size))
            if not all(prompt_done(done, None, suite.name, p.id, labels)
                       for p in group)]  # fmt: skip


def my_share(pending: list[Group], launch: Launch, tensor_parallel: bool) -> set[Group]:
    """This rank's groups: round-robin in suite order; all of them when the processes split
    one model (tensor parallelism) rather than the prompts."""
    if tensor_parallel:
        return set(pending)
    return {group for i, group in enumerate(pending) if i % launch.world_size == launch.rank}


def record_order(suites: list[Any], cfg: RunConfig) -> Callable[[PromptRecord], tuple]:
    """Sort key of the order one process writes records in: suite, group, contender, prompt."""
    n, last = cfg.batch_size, 1 << 30
    suite_at = {s.name: i for i, s in enumerate(suites)}
    prompt_at = {(s.name, str(p.id)): j for s in suites for j, p in enumerate(s.prompts)}
    contender_at = {label: i for i, label in enumerate(contender_labels(cfg))}

    def key(r: PromptRecord) -> tuple:
        j = prompt_at.get((r["suite"], str(r["prompt_id"])), last)
        return (suite_at.get(r["suite"], last), j // n,
                contender_at.get((r["strategy"], r["drafter"]), last), j % n)  # fmt: skip

    return key


def missing_prompts(suites: list[Any], cfg: RunConfig, records: list[PromptRecord]) -> list[str]:
    """`suite/prompt_id` of each prompt that some contender has no record of."""
    have = {(r["suite"], str(r["prompt_id"]), r["strategy"], r["drafter"]) for r in records}
    labels = contender_labels(cfg)
    return [f"{s.name}/{p.id}" for s in suites for p in s.prompts
            if any((s.name, str(p.id), *label) not in have for label in labels)]  # fmt: skip


def execute_sharded(cfg: RunConfig, progress: ProgressReport,
                    resume: Path | None = None) -> RunOutcome | None:  # fmt: skip
    """This process's share of the run; rank 0 returns the run's outcome, the others None."""
    launch = current_launch()
    if cfg.server:
        raise BadInput("--server: a serving engine is benchmarked from one process, and such a "
                       "run is not resumed; start it again without a launcher or --resume")
    suites, target_src, draft_src = preflight(cfg)
    join_group(launch)
    try:
        folder, path, pending = open_shared(cfg, suites, resume, launch)
        with folder or nullcontext():
            models = load_models(cfg, target_src, draft_src, progress)
            return run_share(cfg, suites, models, folder, path, my_share(pending, launch,
                             cfg.tensor_parallel), progress)  # fmt: skip
    finally:
        leave_group()


def open_shared(cfg: RunConfig, suites: list[Any], resume: Path | None,
                launch: Launch) -> tuple[RunFolder | None, Path, list[Group]]:  # fmt: skip
    """Rank 0 claims (or reopens) the folder, folds in what earlier processes left and lists
    the groups to run; every rank receives the folder and the list, or the same bad input."""
    folder, shared = None, None
    if launch.rank == 0:
        try:
            folder = RunFolder.reopen(resume) if resume else RunFolder.claim(cfg.output)
            if resume is None:
                folder.write_config(to_yaml(cfg))
            clear_rank_infos(folder.path)
            records = merge_records(folder.path, record_order(suites, cfg))
            shared = (str(folder.path), pending_groups(suites, cfg, records), None)
        except BadInput as exc:
            if folder is not None:
                folder.release()
            shared = ("", [], str(exc))
    path, pending, problem = share_from_rank0(launch, shared)
    if problem:
        raise BadInput(problem)
    return folder, Path(path), pending


def run_share(cfg: RunConfig, suites: list[Any], models: Any, folder: RunFolder | None,
              path: Path, mine: set[Group],
              progress: ProgressReport) -> RunOutcome | None:  # fmt: skip
    """Decode this rank's groups; rank 0 then waits for the others and writes the results."""
    from specbench_cli.contenders import build_contenders

    launch = current_launch()
    contenders = build_contenders(cfg, models.target, models.draft, models.vocab, models.backend)
    device = models.target.device
    write_rank_info(path, launch, device, finished=False)
    env = run_environment(models, progress)
    warm_up(contenders, suites, models.target.tokenizer, cfg)
    all_ready(launch)  # no process records before all have loaded: a loss after this is a fault
    sink = RankRecords(path, launch.rank, keep=launch.rank == 0 or not cfg.tensor_parallel)
    stop: Interrupted | None = None
    try:
        decode_all(contenders, suites, models.target.tokenizer, cfg, sink, progress,  # type: ignore[arg-type]
                   only=mine)  # fmt: skip
        write_rank_info(path, launch, device, finished=True)
        if folder is not None:
            progress.stage(f"waiting for the other {launch.world_size - 1} process(es)")
            wait_for_ranks(path, launch.world_size)
    except Interrupted as exc:
        stop = exc
    if folder is None:
        if stop is not None:
            raise stop
        return None
    with stop_signals_ignored():  # a second signal must not lose the results of the first
        progress.stage("merging records and aggregating results")
        env = finish_environment(env, models, progress)
        return finish(cfg, suites, contenders, folder, env, stop)


def finish(cfg: RunConfig, suites: list[Any], contenders: list[Any], folder: RunFolder,
           env: dict[str, Any], stop: Interrupted | None) -> RunOutcome:  # fmt: skip
    """Merge every rank's records and write `results.json` (see the module docstring)."""
    launch = current_launch()
    records = merge_records(folder.path, record_order(suites, cfg))
    ranks = [{key: info.get(key) for key in ("rank", "host", "device")}
             for info in read_rank_infos(folder.path)]  # fmt: skip
    clear_rank_infos(folder.path)
    env = {**env, "world_size": launch.world_size, "ranks": ranks}
    data = run_results(cfg, suites, contenders, records, env, stop)
    missing = missing_prompts(suites, cfg, records)
    if missing:
        data["missing"] = missing
        if launch.distributed:
            data["status"] = "incomplete"
    folder.write_results(data)
    return RunOutcome(folder.path, data, stop)
