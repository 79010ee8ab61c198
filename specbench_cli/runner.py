"""Run suites x prompts x contenders and write the run folder; orchestration only.

Prompts are decoded in groups of `batch_size`, in suite order (the last group may be smaller);
every contender decodes the same groups. For every group the baseline and each strategy run back
to back (interleaved), with the same per-prompt seeds (common random numbers), so slow drift of a
shared machine hits all of them alike and the speedup is a ratio measured in one process. Each
finished group x contender is appended to `records.jsonl` at once; `results.json` is aggregated
from that file and written atomically at the end, or on Ctrl-C for what finished.

A group that raises is retried prompt by prompt to find the prompts that fail on their own: they
are recorded as failed with their own error, and the others are decoded again as one smaller
group, so their records keep batch timing (the single-prompt retries only diagnose and are not
recorded). If no prompt fails alone, or the smaller group fails too, its prompts are recorded as
failed with the group's error. The run goes on either way.

Bad input is found before any model loads: the config was validated when it was built, the
suites and model specs are checked here first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from specbench_cli.config import RunConfig
from specbench_cli.errors import BadInput
from specbench_cli.results import ResultsFile, make_results
from specbench_cli.run_folder import RunFolder

DEFAULT_MAX_NEW_TOKENS = 128
WARMUP_TOKENS = 8

Progress = Callable[[int, int, str], None]  # (done, total, what is running)


def quiet_transformers() -> None:
    """Library progress bars and warnings would interleave with our own progress display."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def execute(cfg: RunConfig, progress: Progress | None = None) -> tuple[Path, ResultsFile, bool]:
    """Run everything; return (run folder, results, interrupted). Bad input raises first."""
    from specbench_cli.backends import resolve_backend
    from specbench_cli.contenders import build_contenders, strategy_info
    from specbench_cli.environment import environment
    from specbench_cli.metrics import aggregate
    from specbench_cli.models import check_pair, check_spec, load_model
    from specbench_cli.suites import load_suite

    suites = [load_suite(s, cfg.limit) for s in cfg.suites]
    target_src = check_spec(cfg.target, "target")
    draft_src = check_spec(cfg.draft, "draft") if cfg.draft else None
    folder = RunFolder.claim(cfg.output)
    quiet_transformers()
    target = load_model(target_src, cfg.dtype, cfg.trust_remote_code)
    draft = load_model(draft_src, cfg.dtype, cfg.trust_remote_code) if draft_src else None
    vocab = check_pair(target, draft) if draft else target.vocab_size
    try:  # once per run, so `auto` is not re-resolved at every verification step
        backend = resolve_backend(cfg.backend, target.device)
    except ValueError as exc:
        raise BadInput(f"--backend: {exc}") from None
    contenders = build_contenders(cfg, target, draft, vocab, backend)
    env = {**environment(target.device), "verify_backend": backend}
    warm_up(contenders, suites, target.tokenizer, cfg)

    interrupted = False
    try:
        decode_all(contenders, suites, target.tokenizer, cfg, folder, progress)
    except KeyboardInterrupt:
        interrupted = True
    rows = aggregate(folder.records(), strategy_info(contenders), cfg.k)
    data = make_results(cfg.to_dict(), env, rows, "interrupted" if interrupted else "complete")
    folder.write_results(data)
    return folder.path, data, interrupted


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


def decode_all(contenders: list[Any], suites: list[Any], tokenizer: Any, cfg: RunConfig,
               folder: RunFolder, progress: Progress | None) -> None:  # fmt: skip
    """Every group of prompts under every contender, back to back, records appended as each
    group finishes."""
    from specbench_cli.quality import score_record

    total = sum(len(s.prompts) for s in suites) * len(contenders)
    done = 0
    n = cfg.batch_size
    for suite in suites:
        max_new = cfg.max_new_tokens or suite.max_new_tokens or DEFAULT_MAX_NEW_TOKENS
        groups = [suite.prompts[i : i + n] for i in range(0, len(suite.prompts), n)]
        for index, group in enumerate(groups):
            for c in contenders:
                if progress:
                    first = group[0].id + (f" +{len(group) - 1}" if len(group) > 1 else "")
                    progress(done, total, f"{suite.name}/{first} {c.label}")
                records = decode_group(c, suite, group, tokenizer, cfg, max_new, index)
                for record, prompt in zip(records, group, strict=True):
                    if record["status"] == "ok":
                        score_record(record, suite.scorer, prompt)
                    folder.append(record)
                done += len(group)
    if progress:
        progress(done, total, "done")


def decode_group(c: Any, suite: Any, group: list[Any], tokenizer: Any, cfg: RunConfig,
                 max_new: int, index: int) -> list[Any]:  # fmt: skip
    """Records of one group under one contender, in group order; failures as the module
    docstring says."""
    from specbench_cli.records import failed_record, run_group

    def attempt(prompts: list[Any]) -> list[Any] | Exception:
        try:
            return run_group(c, suite.name, prompts, tokenizer, cfg, max_new, index)
        except (KeyboardInterrupt, SystemExit):
            raise
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
