"""Run suites x prompts x (baseline + strategies) and write the run folder.

For every prompt the baseline and each strategy run back to back (interleaved), with the same
seed (common random numbers), so slow drift of a shared machine hits all of them alike and the
speedup is a ratio measured in one process. Each finished prompt x strategy is appended to
`records.jsonl` at once; `results.json` is written atomically at the end, or on Ctrl-C for what
finished. A prompt that raises is recorded as failed and the run goes on.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from specbench_cli import __version__
from specbench_cli.config import RunConfig
from specbench_cli.errors import BadInput
from specbench_cli.results import (
    BASELINE,
    RECORDS_NAME,
    RESULTS_NAME,
    PromptRecord,
    ResultsFile,
    write_json_atomic,
)

DEFAULT_MAX_NEW_TOKENS = 128


@dataclass
class Contender:
    label: str  # strategy label, "baseline" for autoregressive
    drafter: str  # drafter label, "none" for the baseline
    engine: Any


def prepare_output(cfg: RunConfig) -> Path:
    out = Path(cfg.output) if cfg.output else Path("runs") / datetime.now().strftime(
        "%Y%m%d-%H%M%S")
    if (out / RECORDS_NAME).exists():
        raise BadInput(f"--output {out}: already holds a run (records.jsonl); choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def prompt_seed(seed: int, suite: str, prompt_id: str, turn: int) -> int:
    return zlib.crc32(f"{seed}:{suite}:{prompt_id}:{turn}".encode())


def encode(tokenizer: Any, messages: list[dict[str, str]], chat_template: bool) -> list[int]:
    """Token ids for a conversation; the target's chat template when it has one and it is on."""
    if chat_template and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer("\n".join(m["content"] for m in messages))["input_ids"]


def peak_memory_bytes(device: Any) -> int:
    import torch

    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def run_prompt(c: Contender, suite: str, prompt: Any, tokenizer: Any, cfg: RunConfig,
               max_new: int) -> PromptRecord:
    """All turns of one prompt under one contender; earlier answers are fed back (MT-Bench)."""
    messages: list[dict[str, str]] = []
    record: PromptRecord = {
        "suite": suite, "prompt_id": prompt.id, "category": prompt.category or suite,
        "strategy": c.label, "drafter": c.drafter, "status": "ok", "error": None,
        "output_token_ids": [], "output_text": [], "new_tokens": 0, "wall_s": 0.0,
        "draft_s": 0.0, "verify_s": 0.0, "ttft_s": 0.0, "target_forward_passes": 0,
        "accepted_lengths": [], "drafted_lengths": [], "kl_sum": 0.0, "tv_sum": 0.0,
        "drafted_positions": 0,
    }
    for turn, text in enumerate(prompt.turns):
        messages.append({"role": "user", "content": text})
        ids = encode(tokenizer, messages, cfg.chat_template)
        seed = prompt_seed(cfg.seed, suite, prompt.id, turn)
        out: list[int] = []
        for step in c.engine.generate(ids, max_new, seed):
            record["wall_s"] += step.step_s
            if step.prefill:
                if turn == 0:
                    record["ttft_s"] = step.step_s
            else:
                record["accepted_lengths"].append(step.accepted)
                record["drafted_lengths"].append(step.drafted)
            record["target_forward_passes"] += 1
            record["draft_s"] += step.draft_s
            record["verify_s"] += step.target_s + step.verify_s
            record["kl_sum"] += step.kl
            record["tv_sum"] += step.tv
            record["drafted_positions"] += step.audited
            out.extend(step.tokens)
        answer = tokenizer.decode(out, skip_special_tokens=True)
        messages.append({"role": "assistant", "content": answer})
        record["output_token_ids"].extend(out)
        record["output_text"].append(answer)
        record["new_tokens"] += len(out)
    record["peak_memory_bytes"] = peak_memory_bytes(c.engine.device)
    return record


def score(record: PromptRecord, scorer: str | None, prompt: Any) -> None:
    """Quality scores of a finished record (after the timed part); a scorer crash is noted."""
    if not scorer:
        return
    from specbench_cli.quality import get_scorer

    try:
        record["scores"] = get_scorer(scorer)(prompt, record["output_text"])
    except Exception as exc:  # a broken scorer must not lose the generation
        record["scores"] = {}
        record["score_error"] = f"{type(exc).__name__}: {exc}"[:300]


def failed_record(c: Contender, suite: str, prompt: Any, exc: BaseException) -> PromptRecord:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return {"suite": suite, "prompt_id": prompt.id, "category": prompt.category or suite,
            "strategy": c.label, "drafter": c.drafter, "status": "failed",
            "error": f"{type(exc).__name__}: {message}"[:500]}


def append_record(path: Path, record: PromptRecord) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def environment(device: Any) -> dict[str, Any]:
    import accelerate
    import torch
    import transformers

    env: dict[str, Any] = {
        "specbench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "cpu": _cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }
    try:
        env["git_sha"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
            text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        env["git_sha"] = None
    return env


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def results_file(cfg: RunConfig, env: dict[str, Any], rows: list[Any], status: str) -> ResultsFile:
    return {
        "schema_version": 1,
        "specbench_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "status": status,  # "complete" | "interrupted"
        "environment": env,
        "config": cfg.to_dict(),
        "results": rows,
    }


def write_results(out: Path, data: ResultsFile) -> None:
    write_json_atomic(out / RESULTS_NAME, data)


# --- orchestration -------------------------------------------------------------------------


def quiet_transformers() -> None:
    """Library progress bars and warnings would interleave with our own progress display."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def build_contenders(cfg: RunConfig, target: Any, draft: Any, vocab: int,
                     backend: str) -> list[Contender]:
    from specbench_cli.drafters import drafter_class, parse_drafter_spec
    from specbench_cli.engine import Engine, device_sync
    from specbench_cli.sampling import SamplingConfig
    from specbench_cli.strategies import get_strategy, parse_strategy_spec

    sampling = SamplingConfig(cfg.temperature, cfg.top_k, cfg.top_p)
    eos = eos_ids(target)
    contenders = [Contender(BASELINE, "none", Engine(target.model, vocab, sampling, eos_ids=eos))]
    name, params = parse_drafter_spec(cfg.effective_drafter())
    label = cfg.effective_drafter()
    for spec in cfg.strategies:
        parsed = parse_strategy_spec(spec)
        strategy = get_strategy(parsed.name, backend=backend, **parsed.params)
        if name == "model":
            drafter = drafter_class(name)(draft.model, sampling, vocab, device_sync(draft.device))
        else:
            drafter = drafter_class(name)(**params)
        engine = Engine(target.model, vocab, sampling, strategy, drafter, cfg.k, eos,
                        audit=cfg.audit and not strategy.lossless, noise_mode=cfg.noise_mode)
        contenders.append(Contender(strategy.label, label, engine))
    return contenders


def eos_ids(loaded: Any) -> tuple[int, ...]:
    ids = loaded.model.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if loaded.tokenizer.eos_token_id is not None:
        ids.append(loaded.tokenizer.eos_token_id)
    return tuple(sorted(set(ids)))


def strategy_info(contenders: list[Contender]) -> dict[str, dict[str, Any]]:
    info = {BASELINE: {"name": BASELINE, "params": {}}}
    for c in contenders[1:]:
        info[c.label] = {"name": c.engine.strategy.name, "params": c.engine.strategy.params}
    return info


def execute(cfg: RunConfig, progress: Any = None) -> tuple[Path, ResultsFile, bool]:
    """Run everything; return (run folder, results, interrupted). Bad input raises first."""
    from specbench_cli.kernels import resolve_backend
    from specbench_cli.metrics import aggregate
    from specbench_cli.models import check_pair, check_spec, load_model
    from specbench_cli.suites import load_suite

    suites = [load_suite(s, cfg.limit) for s in cfg.suites]
    target_src = check_spec(cfg.target, "target")
    draft_src = check_spec(cfg.draft, "draft") if cfg.draft else None
    out = prepare_output(cfg)
    quiet_transformers()
    target = load_model(target_src, cfg.dtype, cfg.trust_remote_code)
    draft = load_model(draft_src, cfg.dtype, cfg.trust_remote_code) if draft_src else None
    vocab = check_pair(target, draft) if draft else target.vocab_size
    try:  # once per run, so `auto` is not re-resolved at every verification step
        backend = resolve_backend(cfg.backend, target.device)
    except ValueError as exc:
        raise BadInput(f"--backend: {exc}") from None
    contenders = build_contenders(cfg, target, draft, vocab, backend)
    env = environment(target.device)
    env["verify_backend"] = backend

    first = suites[0].prompts[0] if suites and suites[0].prompts else None
    for c in contenders:  # warm-up: allocator, kernels, caches; untimed and not recorded
        for _ in range(cfg.warmup if first else 0):
            ids = encode(target.tokenizer, [{"role": "user", "content": first.turns[0]}],
                         cfg.chat_template)
            for _step in c.engine.generate(ids, 8, cfg.seed):
                pass

    records: list[PromptRecord] = []
    total = sum(len(s.prompts) for s in suites) * len(contenders)
    interrupted = False
    try:
        for suite in suites:
            max_new = cfg.max_new_tokens or suite.max_new_tokens or DEFAULT_MAX_NEW_TOKENS
            for prompt in suite.prompts:
                for c in contenders:
                    if progress:
                        progress(len(records), total, f"{suite.name}/{prompt.id} {c.label}")
                    try:
                        record = run_prompt(c, suite.name, prompt, target.tokenizer, cfg, max_new)
                    except (KeyboardInterrupt, SystemExit):
                        raise
                    except Exception as exc:  # one prompt's failure must not end the run
                        record = failed_record(c, suite.name, prompt, exc)
                    else:
                        score(record, suite.scorer, prompt)
                    append_record(out / RECORDS_NAME, record)
                    records.append(record)
        if progress:
            progress(len(records), total, "done")
    except KeyboardInterrupt:
        interrupted = True
    rows = aggregate(records, strategy_info(contenders), cfg.k)
    data = results_file(cfg, env, rows, "interrupted" if interrupted else "complete")
    write_results(out, data)
    return out, data, interrupted
