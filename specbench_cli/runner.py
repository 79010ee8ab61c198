"""Run suites x prompts x contenders and write the run folder; orchestration only.

For every prompt the baseline and each strategy run back to back (interleaved), with the same
seed (common random numbers), so slow drift of a shared machine hits all of them alike and the
speedup is a ratio measured in one process. Each finished prompt x contender is appended to
`records.jsonl` at once; `results.json` is aggregated from that file and written atomically at
the end, or for what finished when a stop signal (Ctrl-C, SIGTERM, SIGHUP) ends the run early. A
prompt that raises is recorded as failed and the run goes on.

Bad input is found before any model loads: the config was validated when it was built, the
suites and model specs are checked here first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specbench_cli.config import RunConfig
from specbench_cli.errors import BadInput
from specbench_cli.interrupts import Interrupted, stop_signals_ignored
from specbench_cli.progress import NoProgress, ProgressReport
from specbench_cli.results import make_results
from specbench_cli.run_folder import RunFolder, RunOutcome

DEFAULT_MAX_NEW_TOKENS = 128
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
    folder = RunFolder.claim(cfg.output)
    try:
        for suite in suites:
            progress.note(describe_scoring(suite))
        models = load_models(cfg, target_src, draft_src, progress)
        return _execute(cfg, suites, models, folder, progress)
    except BaseException:
        folder.discard_if_unused()
        raise
    finally:
        folder.release()


def load_models(cfg: RunConfig, target_src: Any, draft_src: Any,
                progress: ProgressReport) -> Models:  # fmt: skip
    """Target, draft (if any), their shared vocabulary and the verify backend, with stages."""
    from specbench_cli.backends import resolve_backend
    from specbench_cli.models import check_pair, load_model

    quiet_transformers()
    progress.stage(f"loading target model {target_src.label}")
    target = load_model(target_src, cfg.dtype, cfg.trust_remote_code)
    draft = None
    if draft_src:
        progress.stage(f"loading draft model {draft_src.label}")
        draft = load_model(draft_src, cfg.dtype, cfg.trust_remote_code)
    vocab = check_pair(target, draft) if draft else target.vocab_size
    progress.stage(f"preparing the {cfg.backend} verify backend (kernels build on first use)")
    try:  # once per run, so `auto` is not re-resolved at every verification step
        backend = resolve_backend(cfg.backend, target.device)
    except ValueError as exc:
        raise BadInput(f"--backend: {exc}") from None
    return Models(target, draft, vocab, backend)


def _execute(cfg: RunConfig, suites: list[Any], models: Models, folder: RunFolder,
             progress: ProgressReport) -> RunOutcome:  # fmt: skip
    from specbench_cli.bootstrap import method_info
    from specbench_cli.contenders import build_contenders, strategy_info
    from specbench_cli.environment import environment
    from specbench_cli.metrics import aggregate

    contenders = build_contenders(cfg, models.target, models.draft, models.vocab, models.backend)
    env = {**environment(models.target.device), "verify_backend": models.backend}
    progress.stage(f"warm-up ({cfg.warmup} untimed generation(s) per contender)")
    warm_up(contenders, suites, models.target.tokenizer, cfg)
    stop: Interrupted | None = None
    try:
        decode_all(contenders, suites, models.target.tokenizer, cfg, folder, progress)
    except Interrupted as exc:
        stop = exc
    with stop_signals_ignored():  # a second signal must not lose the results of the first
        progress.stage("aggregating results")
        rows = aggregate(folder.records(), strategy_info(contenders), cfg.k)
        settings = {s.name: row_settings(cfg, max_new_tokens(cfg, s), models.backend)
                    for s in suites}  # fmt: skip
        rows = [{**row, **settings.get(row["suite"], {})} for row in rows]  # type: ignore[misc]
        data = make_results(cfg.to_dict(), env, rows, method_info(), stop.name if stop else None)
        folder.write_results(data)
    return RunOutcome(folder.path, data, stop)


def max_new_tokens(cfg: RunConfig, suite: Any) -> int:
    """The token budget per turn: the flag, else the suite's, else the default."""
    return cfg.max_new_tokens or suite.max_new_tokens or DEFAULT_MAX_NEW_TOKENS


def row_settings(cfg: RunConfig, max_new: int, backend: str) -> dict[str, Any]:
    """The settings a results row ran with (rows load into a data frame on their own)."""
    keys = ("target", "draft", "k", "temperature", "top_k", "top_p", "seed", "dtype",
            "chat_template", "noise_mode")  # fmt: skip
    return {**{key: getattr(cfg, key) for key in keys}, "max_new_tokens": max_new,
            "verify_backend": backend}  # fmt: skip


def warm_up(contenders: list[Any], suites: list[Any], tokenizer: Any, cfg: RunConfig) -> None:
    """Untimed, unrecorded generations (allocator, kernels, caches) before any measurement."""
    from specbench_cli.prompts import encode

    first = next((s.prompts[0] for s in suites if s.prompts), None)
    if first is None:
        return
    ids = encode(tokenizer, [{"role": "user", "content": first.turns[0]}], cfg.chat_template)
    for c in contenders:
        for _ in range(cfg.warmup):
            for _step in c.engine.generate(ids, WARMUP_TOKENS, cfg.seed):
                pass


def decode_all(contenders: list[Any], suites: list[Any], tokenizer: Any, cfg: RunConfig,
               folder: RunFolder, progress: ProgressReport) -> None:  # fmt: skip
    """Every prompt under every contender, back to back, each record appended as it finishes."""
    from specbench_cli.quality import score_record
    from specbench_cli.records import failed_record, run_prompt

    total = sum(len(s.prompts) for s in suites) * len(contenders)
    done = tokens = 0
    seconds = 0.0
    for suite in suites:
        max_new = max_new_tokens(cfg, suite)
        for i, prompt in enumerate(suite.prompts, 1):
            for c in contenders:
                rate = f"{tokens / seconds:.1f} tok/s" if seconds else ""
                progress.advance(done, total, f"{suite.name} prompt {i}/{len(suite.prompts)} "
                                 f"{c.label}", rate)  # fmt: skip
                try:
                    record = run_prompt(c, suite.name, prompt, tokenizer, cfg, max_new)
                except Exception as exc:  # one prompt's failure must not end the run
                    record = failed_record(c, suite.name, prompt, exc)
                else:
                    score_record(record, suite.scorer, prompt)
                    tokens, seconds = tokens + record["new_tokens"], seconds + record["wall_s"]
                folder.append(record)
                done += 1
    progress.advance(done, total, "done", f"{tokens / seconds:.1f} tok/s" if seconds else "")
