"""Run suites x prompts x contenders and write the run folder; orchestration only.

For every prompt the baseline and each strategy run back to back (interleaved), with the same
seed (common random numbers), so slow drift of a shared machine hits all of them alike and the
speedup is a ratio measured in one process. Each finished prompt x contender is appended to
`records.jsonl` at once; `results.json` is aggregated from that file and written atomically at
the end, or on Ctrl-C for what finished. A prompt that raises is recorded as failed and the run
goes on.

Bad input is found before any model loads: the config was validated when it was built, the
suites and model specs are checked here first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from specbench_cli.choices import NOISE_STREAM
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
    config = {**cfg.to_dict(), "noise_mode": NOISE_STREAM}  # compare refuses other streams
    data = make_results(config, env, rows, "interrupted" if interrupted else "complete")
    folder.write_results(data)
    return folder.path, data, interrupted


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
               folder: RunFolder, progress: Progress | None) -> None:  # fmt: skip
    """Every prompt under every contender, back to back, each record appended as it finishes."""
    from specbench_cli.quality import score_record
    from specbench_cli.records import failed_record, run_prompt

    total = sum(len(s.prompts) for s in suites) * len(contenders)
    done = 0
    for suite in suites:
        max_new = cfg.max_new_tokens or suite.max_new_tokens or DEFAULT_MAX_NEW_TOKENS
        for prompt in suite.prompts:
            for c in contenders:
                if progress:
                    progress(done, total, f"{suite.name}/{prompt.id} {c.label}")
                try:
                    record = run_prompt(c, suite.name, prompt, tokenizer, cfg, max_new)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as exc:  # one prompt's failure must not end the run
                    record = failed_record(c, suite.name, prompt, exc)
                else:
                    score_record(record, suite.scorer, prompt)
                folder.append(record)
                done += 1
    if progress:
        progress(done, total, "done")
