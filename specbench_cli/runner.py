"""Run suites x prompts x contenders and write the run folder; orchestration only.

Prompts are decoded in groups of `batch_size`, in suite order (the last group may be smaller);
every contender decodes the same groups. For every group the baseline and each strategy run back
to back (interleaved), with the same per-prompt seeds (common random numbers), so slow drift of a
shared machine hits all of them alike and the speedup is a ratio measured in one process. A group
is decoded `--rounds` times under every contender, in an order that cancels drift, and merged per
prompt (median timings, identical tokens required: rounds.py). A group's records are appended to
`records.jsonl` as soon as its rounds are done; `results.json` is aggregated from that file and
written atomically at the end, or for what finished when a stop signal (Ctrl-C, SIGTERM, SIGHUP)
ends the run early.

A group that raises is retried prompt by prompt to find the prompts that fail on their own: they
are recorded as failed with their own error, and the others are decoded again as one smaller
group, so their records keep batch timing (the single-prompt retries only diagnose and are not
recorded). If no prompt fails alone, or the smaller group fails too, its prompts are recorded as
failed with the group's error. The run goes on either way.

Bad input is found before any model loads: the config was validated when it was built, the
suites and model specs are checked here first.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import partial
from typing import Any

from specbench_cli.choices import NOISE_STREAM
from specbench_cli.config import RunConfig, to_yaml
from specbench_cli.errors import BadInput
from specbench_cli.interrupts import Interrupted, stop_signals_ignored
from specbench_cli.progress import NoProgress, ProgressReport
from specbench_cli.results import ResultsFile, make_results
from specbench_cli.run_folder import RunFolder, RunOutcome

WARMUP_TOKENS = 8


@dataclass
class Models:
    target: Any  # models.LoadedModel
    draft: Any  # models.LoadedModel or None
    vocab: int  # logit width shared by target and draft
    backend: str  # the verify backend `--backend` resolved to


def quiet_transformers() -> None:
    """Library progress bars and warnings would interleave with our own progress display."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def preflight(cfg: RunConfig) -> tuple[list[Any], Any, Any]:
    """Everything a run checks before it loads a model: suites and model specs. `--print-config`
    runs it too, so it validates like a run."""
    from specbench_cli.models import check_spec
    from specbench_cli.suites import load_suite

    suites = [load_suite(s, cfg.limit) for s in cfg.suites]
    target_src = check_spec(cfg.target, "target")
    draft_src = check_spec(cfg.draft, "draft") if cfg.draft else None
    return suites, target_src, draft_src


def execute(cfg: RunConfig, progress: ProgressReport | None = None) -> RunOutcome:
    """Run everything and write the run folder. Bad input raises before any model loads; a stop
    signal while decoding ends the run with the finished records and results; one before the
    first record leaves nothing behind and propagates."""
    from specbench_cli.quality import describe_scoring

    progress = progress or NoProgress()
    if cfg.server:  # a serving engine decodes; nothing is loaded here
        from specbench_cli.serving.bench import execute_served

        return execute_served(cfg, progress)
    suites, target_src, draft_src = preflight(cfg)
    with RunFolder.claim(cfg.output) as folder:
        folder.write_config(to_yaml(cfg))
        for suite in suites:
            progress.note(describe_scoring(suite))
        models = load_models(cfg, target_src, draft_src, progress)
        return _execute(cfg, suites, models, folder, progress)


def load_models(cfg: RunConfig, target_src: Any, draft_src: Any,
                progress: ProgressReport) -> Models:  # fmt: skip
    """Target, draft (if any), their shared vocabulary and the verify backend, with stages."""
    from specbench_cli.backends import resolve_backend
    from specbench_cli.launch import current_launch
    from specbench_cli.models import check_pair, load_model
    from specbench_cli.placement import placement_kwargs

    quiet_transformers()
    place = placement_kwargs(cfg.device_map, cfg.max_memory, cfg.tensor_parallel,
                             current_launch())  # fmt: skip
    progress.stage(f"loading target model {target_src.label}")
    target = load_model(target_src, cfg.dtype, cfg.trust_remote_code, place)
    draft = None
    if draft_src:
        progress.stage(f"loading draft model {draft_src.label}")
        draft = load_model(draft_src, cfg.dtype, cfg.trust_remote_code, place)
    vocab = check_pair(target, draft) if draft else target.vocab_size
    progress.stage(f"preparing the {cfg.backend} verify backend (kernels build on first use)")
    try:  # once per run, so `auto` is not re-resolved at every verification step
        backend = resolve_backend(cfg.backend, target.device)
    except ValueError as exc:
        raise BadInput(f"--backend: {exc}") from None
    return Models(target, draft, vocab, backend)


def run_environment(models: Models, progress: ProgressReport | None = None) -> dict[str, Any]:
    """The machine and libraries of a run, the verify backend it resolved to, the threads it
    pinned and the machine's state now (`machine_start`), with a warning when it is busy."""
    from specbench_cli.cpu_attention import mode as attention_mode
    from specbench_cli.environment import busy_warning, environment, machine_state, pin_threads

    pinned = pin_threads()
    state = machine_state(models.target.device)
    warning = busy_warning(state, "start", pinned["cpu_threads"])
    if progress is not None and warning:
        progress.note(warning)
    return {**environment(models.target.device), **pinned, "verify_backend": models.backend,
            "attention": attention_mode(models.target.model), "machine_start": state}  # fmt: skip


def finish_environment(env: dict[str, Any], models: Models,
                       progress: ProgressReport) -> dict[str, Any]:  # fmt: skip
    """`env` with the machine's state at the end of the run (`machine_end`), warning if busy."""
    from specbench_cli.environment import busy_warning, machine_state

    state = machine_state(models.target.device)
    if warning := busy_warning(state, "end", env["cpu_threads"]):
        progress.note(warning)
    return {**env, "machine_end": state}


def _execute(cfg: RunConfig, suites: list[Any], models: Models, folder: RunFolder,
             progress: ProgressReport) -> RunOutcome:  # fmt: skip
    from specbench_cli.contenders import build_contenders

    contenders = build_contenders(cfg, models.target, models.draft, models.vocab, models.backend)
    env = run_environment(models, progress)
    progress.stage(f"warm-up ({cfg.warmup} untimed generation(s) per contender)")
    warm_up(contenders, suites, models.target.tokenizer, cfg)
    stop: Interrupted | None = None
    try:
        decode_all(contenders, suites, models.target.tokenizer, cfg, folder, progress)
    except Interrupted as exc:
        stop = exc
    with stop_signals_ignored():  # a second signal must not lose the results of the first
        progress.stage("aggregating results")
        env = finish_environment(env, models, progress)
        data = run_results(cfg, suites, contenders, folder.records(), env, stop)
        folder.write_results(data)
    return RunOutcome(folder.path, data, stop)


def run_results(cfg: RunConfig, suites: list[Any], contenders: list[Any], records: list[Any],
                env: dict[str, Any], stop: Interrupted | None) -> ResultsFile:  # fmt: skip
    """The results document of a run: rows aggregated from `records`, with their settings."""
    from specbench_cli.bootstrap import method_info
    from specbench_cli.contenders import strategy_info
    from specbench_cli.metrics import aggregate, timing_noise

    backend = env["verify_backend"]
    rows = aggregate(records, strategy_info(contenders), cfg.k)
    settings = {s.name: row_settings(cfg, cfg.token_budget(s.max_new_tokens), backend)
                for s in suites}  # fmt: skip
    rows = [{**row, **settings.get(row["suite"], {})} for row in rows]  # type: ignore[misc]
    config = {**cfg.to_dict(), "noise_mode": NOISE_STREAM}  # compare refuses other streams
    return make_results(config, env, rows, method_info(), stop.name if stop else None,
                        timing_noise(records))


def row_settings(cfg: RunConfig, max_new: int, backend: str) -> dict[str, Any]:
    """The settings a results row ran with (rows load into a data frame on their own)."""
    keys = ("target", "draft", "k", "temperature", "top_k", "top_p", "seed", "dtype",
            "chat_template", "batch_size")  # fmt: skip
    return {**{key: getattr(cfg, key) for key in keys}, "max_new_tokens": max_new,
            "noise_mode": NOISE_STREAM, "verify_backend": backend}  # fmt: skip


def warm_up(contenders: list[Any], suites: list[Any], tokenizer: Any, cfg: RunConfig) -> None:
    """Untimed, unrecorded generations (allocator, kernels, caches) before any measurement: the
    first prompt's first turn, as many times as the run's batch size (the batch shape)."""
    from specbench_cli.prompts import encode

    first = next((s.prompts[0] for s in suites if s.prompts), None)
    if first is None:
        return
    ids = encode(tokenizer, [{"role": "user", "content": first.turns[0]}], cfg.chat_template)
    for c in contenders:
        for _ in range(cfg.warmup):
            batch = c.engine.generate_batch([ids] * cfg.batch_size, WARMUP_TOKENS,
                                            [cfg.seed] * cfg.batch_size)  # fmt: skip
            for _step in batch:
                pass
        if c.memory is not None:  # the warm-up's output must not help the measured prompts
            c.memory.clear()


def prompt_groups(suite: Any, batch_size: int) -> list[Any]:
    """The suite's prompts in groups of `batch_size`, in suite order (the last may be smaller)."""
    n = batch_size
    return [suite.prompts[i : i + n] for i in range(0, len(suite.prompts), n)]


def decode_all(contenders: list[Any], suites: list[Any], tokenizer: Any, cfg: RunConfig,
               folder: RunFolder, progress: ProgressReport,
               only: Collection[tuple[str, int]] | None = None) -> None:  # fmt: skip
    """Every group of prompts under every contender, `cfg.rounds` times in balanced order
    (rounds.py), records appended as each group finishes all its rounds; with `only`, just those
    (suite name, group index) groups. Progress counts prompts decoded, every round included."""
    from specbench_cli.quality import score_record
    from specbench_cli.rounds import run_rounds

    chosen = [(suite, [(index, group) for index, group in
                       enumerate(prompt_groups(suite, cfg.batch_size))
                       if only is None or (suite.name, index) in only])
              for suite in suites]  # fmt: skip
    tally = Tally(progress, sum(len(g) for _, groups in chosen for _, g in groups)
                  * len(contenders) * cfg.rounds)  # fmt: skip
    n = cfg.batch_size
    for suite, groups in chosen:
        max_new = cfg.token_budget(suite.max_new_tokens)
        for index, group in groups:
            where = f"{suite.name} prompt {index * n + 1}" + (
                f"-{index * n + len(group)}" if len(group) > 1 else "") + f"/{len(suite.prompts)}"
            decode = partial(_decode_round, suite=suite, group=group, index=index,
                             tokenizer=tokenizer, cfg=cfg, max_new=max_new, tally=tally,
                             where=where)  # fmt: skip
            for records in run_rounds(contenders, cfg.rounds, decode):
                for record, prompt in zip(records, group, strict=True):
                    if record["status"] == "ok":
                        score_record(record, suite.scorer, prompt)
                        tally.tokens += record["new_tokens"]
                        tally.seconds += record.get("batch_share_s", record["wall_s"])
                    elif record["error"].startswith("NondeterministicRounds"):
                        progress.note(f"warning: {record['error']}")
                    folder.append(record)
    tally.show("done")


@dataclass
class Tally:
    """decode_all's progress: prompt decodes done (each round counts) of `total`, and the
    tokens and seconds of the finished records for the rate."""

    progress: ProgressReport
    total: int
    done: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def show(self, current: str) -> None:
        rate = f"{self.tokens / self.seconds:.1f} tok/s" if self.seconds else ""
        self.progress.advance(self.done, self.total, current, rate)


def _decode_round(c: Any, r: int, *, suite: Any, group: list[Any], index: int, tokenizer: Any,
                  cfg: RunConfig, max_new: int, tally: Tally,
                  where: str) -> list[Any]:  # fmt: skip
    """Round `r` of one group under one contender, shown on the progress line."""
    tally.show(f"{where} {c.label}" + (f" round {r + 1}/{cfg.rounds}" if cfg.rounds > 1 else ""))
    records = decode_group(c, suite, group, tokenizer, cfg, max_new, index)
    tally.done += len(group)
    return records


def decode_group(c: Any, suite: Any, group: list[Any], tokenizer: Any, cfg: RunConfig,
                 max_new: int, index: int) -> list[Any]:  # fmt: skip
    """Records of one group under one contender, in group order; failures as the module
    docstring says."""
    from specbench_cli.records import failed_record, run_group

    def attempt(prompts: list[Any]) -> list[Any] | Exception:
        try:
            return run_group(c, suite.name, prompts, tokenizer, cfg, max_new, index)
        except Exception as exc:  # one group's failure must not end the run
            return exc

    result = attempt(group)
    if not isinstance(result, Exception):
        return result
    alone = [attempt([p]) for p in group] if len(group) > 1 else [result]
    records: list[Any] = [failed_record(c, suite.name, p, r, cfg.batch_size)
                          if isinstance(r, Exception) else None
                          for p, r in zip(group, alone, strict=True)]  # fmt: skip
    rest = [i for i, r in enumerate(records) if r is None]
    if rest:  # together again; if none failed alone, the failure needs the batch: it stands
        retried = attempt([group[i] for i in rest]) if len(rest) < len(group) else result
        for j, i in enumerate(rest):
            records[i] = (failed_record(c, suite.name, group[i], retried, cfg.batch_size)
                          if isinstance(retried, Exception) else retried[j])  # fmt: skip
    return records
