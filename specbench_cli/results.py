"""The results file: versioned schema, environment capture, atomic read and write.

A run folder holds two files:
- `records.jsonl`: one `PromptRecord` per line (prompt x strategy), appended as each finishes,
  so an interrupted run loses nothing that completed.
- `results.json`: `ResultsFile`, the aggregates per strategy x drafter x suite, written
  atomically (temp file + rename) at the end of a run, or for what finished when a stop
  signal (Ctrl-C, SIGTERM, SIGHUP) ended it.

Conventions (docs/metrics.md has the full definitions):
- `mean_accepted_tokens`: tokens emitted per target forward pass (accepted drafts + the one
  correction or bonus token), summed over all steps of all prompts then divided (step-weighted);
  1.00 for the autoregressive baseline. Spec-Bench's "#Mean accepted tokens", vLLM's "mean
  acceptance length". Tools that exclude the bonus token report this minus 1.
- `acceptance_rate`: accepted drafts / drafted tokens.
- `per_position_acceptance[i]`: accepted drafts at position i+1 / steps that drafted at least
  i+1 tokens (conditional on the position being drafted, unconditional on earlier acceptance).
  For tree contenders position = depth: accepted paths reaching depth i+1 / steps whose tree
  reached depth i+1, and `acceptance_rate` = accepted path length / tree depth.
- `speedup`: tokens/s of the strategy over tokens/s of the autoregressive baseline measured in
  the same run on the same prompts (sums of new tokens over sums of wall time).
- `divergence`: KL(pi || q) and TV(pi, q) summed over the drafted positions whose token was
  emitted, divided by the new tokens (per emitted token; 0 for lossless strategies).
- Batches (`batch_size` N > 1): `tokens_per_second` is each batch's new tokens over its wall
  time, summed over batches (records carry their share of it, `batch_share_s`);
  `time_per_token_*` is the per-request view, each request's own latency per output token.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from specbench_cli import __version__
from specbench_cli.errors import BadInput, shorten

SCHEMA_VERSION = 1
RESULTS_NAME = "results.json"
RECORDS_NAME = "records.jsonl"
BASELINE = "baseline"  # strategy label of the autoregressive baseline rows


class PromptRecord(TypedDict, total=False):
    suite: str
    prompt_id: str
    category: str | None  # Spec-Bench category, else the suite name
    strategy: str  # strategy label, e.g. "cactus:delta=0.5"; "baseline" for autoregressive
    drafter: str  # drafter label, e.g. "ngram", "model"; "none" for the baseline
    status: str  # "ok" | "failed"
    error: str | None  # one line, for failed prompts
    batch_size: int  # the run's --batch-size
    batch_index: int  # which group of the suite (batch_size prompts in suite order), from 0
    batch_rows: int  # prompts decoded together with this one (this one included)
    output_token_ids: list[int]  # all turns concatenated
    output_text: list[str]  # one string per turn
    new_tokens: int
    prompt_tokens: int  # model input tokens over all turns (each turn: the conversation so far)
    max_new_tokens: int  # the token budget of each turn
    truncated: bool  # some turn stopped at the budget, not at an end-of-sequence token
    turns: list[dict[str, Any]]  # per turn: prompt_tokens, new_tokens, truncated, wall_s, ttft_s
    wall_s: float  # decoding time, prefill included, warm-up excluded; at batch N this
    # request's latency: its batch's steps until its last token, summed over turns
    batch_share_s: float  # its share of its batches' wall time (split evenly per turn)
    draft_s: float  # time inside the drafter
    verify_s: float  # time in target forward passes + acceptance
    ttft_s: float  # time to first token of the first turn
    prefill_s: float  # prefill steps of every turn (the rest of wall_s is decoding steps)
    target_forward_passes: int  # prefill + one per step
    accepted_lengths: list[int]  # accepted drafts (tree: accepted path length) per speculative step
    drafted_lengths: list[int]  # drafted tokens (tree: depth of the verified tree) per step
    drafted_nodes: list[int]  # drafted tokens (tree: nodes of the verified tree) per step
    peak_memory_bytes: int  # peak while this record ran: RSS on CPU, allocated on GPU
    # repeated rounds (rounds.py): the timings above are medians over rounds, these every value
    rounds: int  # rounds the prompt was decoded in (absent: once)
    round_wall_s: list[float]  # likewise round_batch_share_s, round_ttft_s, round_prefill_s,
    # round_draft_s, round_verify_s
    kl_sum: float  # divergence audit: sum over emitted drafted positions of KL(pi || q)
    tv_sum: float  # the same for TV(pi, q)
    drafted_positions: int  # positions the audit covered
    scores: dict[str, float]  # quality per metric from the suite's scorer
    score_error: str  # why the scorer failed, when it did
    # runs against a serving engine (docs/serving.md); fields a server cannot provide are None
    tpot_s: float | None  # time per output token after the first, all turns
    engine_counts: dict[str, Any] | None  # the engine's drafted/accepted/... counts


class ResultRow(TypedDict, total=False):
    strategy: str  # label; "baseline" for the autoregressive baseline
    strategy_name: str  # registry name, e.g. "cactus"
    params: dict[str, Any]
    drafter: str
    kind: str  # "chain" (one drafted chain per step) or "tree"; "" for the baseline
    branches: int  # children per node the drafter proposes (1 for chains)
    depth: int  # deepest drafted level per step (k for chains)
    nodes: int  # most nodes drafted per step (k for chains)
    mean_tree_nodes: float  # nodes (chain: drafted tokens) verified per speculative step
    suite: str
    category: str | None  # set on per-category rows of Spec-Bench suites
    batch_size: int  # prompts decoded together (the run's --batch-size)
    num_prompts: int  # prompts that finished
    num_failed: int
    new_tokens: int
    wall_s: float  # sum of the records' batch shares: the contender's decoding time
    tokens_per_second: float
    baseline_tokens_per_second: float | None  # None without a baseline (server runs)
    speedup: float | None
    speedup_ci: list[float]  # 95% interval over prompts [low, high]; [] below the minimum n
    num_paired: int  # prompts finished by this contender and the baseline (speedup's n)
    mean_accepted_tokens: float
    acceptance_rate: float | None  # None for the baseline (nothing drafted)
    per_position_acceptance: list[float]
    target_forward_passes: int
    time_to_first_token_s: float  # median over prompts
    time_per_token_median_s: float  # per request: wall_s / new_tokens; median over requests
    time_per_token_p90_s: float  # the same, 90th percentile
    peak_memory_bytes: int
    timing_noise: float | None  # median over prompts of (max - min) / median of round times
    draft_time_share: float  # draft_s / wall_s
    quality: dict[str, float]  # mean score per metric
    quality_delta: dict[str, dict[str, Any]]  # metric -> {value, low, high, significant, n}
    # the settings the row ran with, so rows load into a data frame without the config:
    # target, draft, k, temperature, top_k, top_p, max_new_tokens (this suite's), seed, dtype,
    # chat_template, noise_mode, verify_backend
    divergence: dict[str, float]  # {"kl", "tv"}: per emitted token (see the module docstring)
    latency: dict[str, Any]  # server runs: {ttft_s, tpot_s, e2e_s} -> {p50, p90, p99}


class ResultsFile(TypedDict):
    schema_version: int
    specbench_version: str
    created: str  # ISO 8601, UTC
    status: str  # "complete" | "interrupted" (a stop signal: rows cover the prompts that finished)
    # | "incomplete" (a data-parallel run that lost a process: `missing` names what is left)
    interrupted_by: str | None  # the stop signal of an interrupted run: SIGINT, SIGTERM or SIGHUP
    environment: dict[str, Any]  # versions, device, CPU/GPU name, threads, git sha
    config: dict[str, Any]  # the effective run configuration (as `--print-config` shows it)
    intervals: dict[str, Any]  # how intervals are computed: method, level, min_prompts, ...
    results: list[ResultRow]
    missing: NotRequired[list[str]]  # "suite/prompt_id" of prompts some contender never recorded
    # the spread of repeated rounds, {overall, rounds, by_strategy}; None when measured once
    timing_noise: NotRequired[dict[str, Any] | None]


def record_error(exc: BaseException) -> str:
    """A failed record's `error`: the exception's type and the first line of its message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:500]


def throughput_wall_s(record: PromptRecord) -> float:
    """The record's share of its batches' wall time (its own wall time at batch 1 and in
    records written before batches existed)."""
    return record.get("batch_share_s", record["wall_s"])


def make_results(config: dict[str, Any], environment: dict[str, Any], rows: list[ResultRow],
                 intervals: dict[str, Any], interrupted_by: str | None = None,
                 timing_noise: dict[str, Any] | None = None) -> ResultsFile:  # fmt: skip
    """A results document of the current schema version; `interrupted_by` names the stop
    signal of an interrupted run, `timing_noise` the spread of repeated rounds (rounds.py)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "specbench_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "status": "interrupted" if interrupted_by else "complete",
        "interrupted_by": interrupted_by,
        "environment": environment,
        "config": config,
        "intervals": intervals,
        "timing_noise": timing_noise,
        "results": rows,
    }


def json_safe(value: Any) -> Any:
    """JSON has no infinities: an infinite KL (mass where q = 0) is written as the string "inf"."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so a reader never sees a truncated file: temp file in the same folder, rename."""
    write_text_atomic(path, json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` so a reader sees the old file or the new one, never a part: temp file in
    the same folder, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a results file is shared like any
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def resolve_results_path(path: str | Path) -> Path:
    """A results file, or a run folder that contains one."""
    p = Path(path)
    try:
        if p.is_dir():
            p = p / RESULTS_NAME
        if not p.is_file():
            raise BadInput(f"no results file at {shorten(str(path))}")
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise BadInput(f"{shorten(str(path))}: {exc.strerror or exc}") from None
    return p


def read_results(path: str | Path) -> ResultsFile:
    """Load and check a results file; any problem is a one-line BadInput."""
    p = resolve_results_path(path)
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise BadInput(f"{p}: not a specbench results file (no schema_version)")
    version = data["schema_version"]
    if type(version) is not int or version != SCHEMA_VERSION:  # noqa: E721 (true == 1)
        kind = "" if type(version) is int else f" (a {type(version).__name__})"  # noqa: E721
        raise BadInput(f"{p}: schema_version {json.dumps(version)}{kind} is not supported: "
                       f"this specbench reads the integer {SCHEMA_VERSION}")  # fmt: skip
    if not isinstance(data.get("results"), list):
        raise BadInput(f"{p}: 'results' is missing or not a list")
    return data  # type: ignore[return-value]


def read_records(run_dir: str | Path) -> list[PromptRecord]:
    """Per-prompt records of a run folder; a truncated last line (killed run) is skipped."""
    p = Path(run_dir)
    if p.is_file():
        p = p.parent
    return read_record_file(p / RECORDS_NAME)


def read_record_file(p: Path) -> list[PromptRecord]:
    """The records of one JSON-lines file (none if it is missing); a truncated last line (a
    killed writer) is skipped."""
    if not p.is_file():
        return []
    records: list[PromptRecord] = []
    lines = p.read_text().splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines):
                break  # the last write was cut off
            raise BadInput(f"{p}:{i}: corrupt record line") from None
        if not isinstance(record, dict):
            raise BadInput(f"{p}:{i}: a record must be a JSON object")
        records.append(record)
    return records
