"""The results file: versioned schema, environment capture, atomic read and write.

A run folder holds two files:
- `records.jsonl`: one `PromptRecord` per line (prompt x strategy), appended as each finishes,
  so an interrupted run loses nothing that completed.
- `results.json`: `ResultsFile`, the aggregates per strategy x drafter x suite, written
  atomically (temp file + rename) at the end of a run, or for what finished on Ctrl-C.

Conventions (docs/metrics.md has the full definitions):
- `mean_accepted_tokens`: tokens emitted per target forward pass (accepted drafts + the one
  correction or bonus token), summed over all steps of all prompts then divided (step-weighted);
  1.00 for the autoregressive baseline. Spec-Bench's "#Mean accepted tokens", vLLM's "mean
  acceptance length". Tools that exclude the bonus token report this minus 1.
- `acceptance_rate`: accepted drafts / drafted tokens.
- `per_position_acceptance[i]`: accepted drafts at position i+1 / steps that drafted at least
  i+1 tokens (conditional on the position being drafted, unconditional on earlier acceptance).
- `speedup`: tokens/s of the strategy over tokens/s of the autoregressive baseline measured in
  the same run on the same prompts (sums of new tokens over sums of wall time).
- `divergence`: KL(pi || q) and TV(pi, q) summed over the drafted positions whose token was
  emitted, divided by the new tokens (per emitted token; 0 for lossless strategies).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypedDict

from specbench_cli import __version__
from specbench_cli.errors import BadInput

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
    output_token_ids: list[int]  # all turns concatenated
    output_text: list[str]  # one string per turn
    new_tokens: int
    wall_s: float  # decoding time, prefill included, warm-up excluded
    draft_s: float  # time inside the drafter
    verify_s: float  # time in target forward passes + acceptance
    ttft_s: float  # time to first token of the first turn
    prefill_s: float  # prefill steps of every turn (the rest of wall_s is decoding steps)
    target_forward_passes: int  # prefill + one per step
    accepted_lengths: list[int]  # accepted drafts per speculative step
    drafted_lengths: list[int]  # drafted tokens per speculative step
    peak_memory_bytes: int  # peak while this record ran: RSS on CPU, allocated on GPU
    kl_sum: float  # divergence audit: sum over emitted drafted positions of KL(pi || q)
    tv_sum: float  # the same for TV(pi, q)
    drafted_positions: int  # positions the audit covered
    scores: dict[str, float]  # quality per metric from the suite's scorer
    score_error: str  # why the scorer failed, when it did


class ResultRow(TypedDict, total=False):
    strategy: str  # label; "baseline" for the autoregressive baseline
    strategy_name: str  # registry name, e.g. "cactus"
    params: dict[str, Any]
    drafter: str
    suite: str
    category: str | None  # set on per-category rows of Spec-Bench suites
    num_prompts: int  # prompts that finished
    num_failed: int
    new_tokens: int
    wall_s: float
    tokens_per_second: float
    baseline_tokens_per_second: float
    speedup: float
    speedup_ci: list[float]  # 95% paired bootstrap over prompts [low, high]
    mean_accepted_tokens: float
    acceptance_rate: float | None  # None for the baseline (nothing drafted)
    per_position_acceptance: list[float]
    target_forward_passes: int
    time_to_first_token_s: float  # median over prompts
    peak_memory_bytes: int
    draft_time_share: float  # draft_s / wall_s
    quality: dict[str, float]  # mean score per metric
    quality_delta: dict[str, dict[str, float]]  # metric -> {value, low, high, significant}
    divergence: dict[str, float]  # {"kl", "tv"}: per emitted token (see the module docstring)


class ResultsFile(TypedDict):
    schema_version: int
    specbench_version: str
    created: str  # ISO 8601, UTC
    status: str  # "complete" | "interrupted" (Ctrl-C: rows cover the prompts that finished)
    environment: dict[str, Any]  # versions, device, CPU/GPU name, threads, git sha
    config: dict[str, Any]  # the effective run configuration (as `--print-config` shows it)
    results: list[ResultRow]


def make_results(config: dict[str, Any], environment: dict[str, Any], rows: list[ResultRow],
                 status: str) -> ResultsFile:  # fmt: skip
    """A results document of the current schema version."""
    return {
        "schema_version": SCHEMA_VERSION,
        "specbench_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "status": status,
        "environment": environment,
        "config": config,
        "results": rows,
    }


def _finite(value: Any) -> Any:
    """JSON has no infinities: an infinite KL (mass where q = 0) is written as the string "inf"."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so a reader never sees a truncated file: temp file in the same folder, rename."""
    data = _finite(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resolve_results_path(path: str | Path) -> Path:
    """A results file, or a run folder that contains one."""
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS_NAME
    if not p.is_file():
        raise BadInput(f"no results file at {path}")
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
    if data["schema_version"] != SCHEMA_VERSION:
        raise BadInput(
            f"{p}: schema_version {data['schema_version']} is not supported "
            f"(this specbench reads {SCHEMA_VERSION})"
        )
    if not isinstance(data.get("results"), list):
        raise BadInput(f"{p}: 'results' is missing or not a list")
    return data  # type: ignore[return-value]


def read_records(run_dir: str | Path) -> list[PromptRecord]:
    """Per-prompt records of a run folder; a truncated last line (killed run) is skipped."""
    p = Path(run_dir)
    if p.is_file():
        p = p.parent
    p = p / RECORDS_NAME
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
