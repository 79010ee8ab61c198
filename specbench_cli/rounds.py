"""Rounds: every group of prompts decoded `--rounds` times under every contender, in an order
that cancels drift, merged into one record per prompt and contender.

Order: round r runs the contenders rotated by r (round 0: baseline, A, B; round 1: A, B,
baseline; ...), so over the rounds each contender takes each place in the order in turn, and
whatever the place costs or gains (a cache warmed by the previous contender, a machine slowly
speeding up or slowing down within a group) is spread over all of them instead of always hitting
the same one.

Merge: a prompt's timings (`wall_s`, `batch_share_s`, `ttft_s`, `prefill_s`, `draft_s`,
`verify_s`, and each turn's `wall_s` and `ttft_s`) are the median over its rounds, each figure on
its own, except that a multi-turn prompt's `wall_s` is the sum of its turns' medians (a record's
latency is the sum of its turns'); every round's value stays in the record as `round_<name>`
lists. Everything else (tokens,
accepted and drafted lengths, divergence, text) must be the same in every round: the seeds are the
same, so a difference means the decoding is not reproducible, and the prompt is recorded as failed
with an error naming the prompt, the contender and the round (a median of timings of different
work means nothing). A prompt that failed in any round is failed.

Memory: drafters that learn across requests (the suffix drafter's global tree, `RunMemory`) must
start every round of a group from the same state, so the memory is snapshotted before the first
round and restored after every round but the last; only the last round's outputs are kept.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from specbench_cli.results import PromptRecord, record_error

# measured per round, merged by the median; `round_<name>` keeps every round's value
TIMED = ("wall_s", "batch_share_s", "ttft_s", "prefill_s", "draft_s", "verify_s")
TURN_TIMED = ("wall_s", "ttft_s")
# what must not change from round to round
DETERMINISTIC = ("output_token_ids", "accepted_lengths", "drafted_lengths", "drafted_nodes",
                 "new_tokens")  # fmt: skip


class NondeterministicRounds(RuntimeError):
    """The same prompt under the same contender and seeds decoded differently in two rounds."""


def round_order(count: int, r: int) -> list[int]:
    """Indices of `count` contenders in round `r`: rotated left by r."""
    shift = r % count if count else 0
    return [*range(shift, count), *range(shift)]


Decode = Callable[[Any, int], list[PromptRecord]]  # (contender, round) -> records of a group


def run_rounds(contenders: Sequence[Any], rounds: int,
               decode: Decode) -> list[list[PromptRecord]]:  # fmt: skip
    """`decode(contender, round)` for every round and contender in balanced order; the merged
    records of each contender, in `contenders` order."""
    snapshots = {i: c.memory.snapshot() for i, c in enumerate(contenders)
                 if rounds > 1 and getattr(c, "memory", None) is not None}  # fmt: skip
    runs: list[list[list[PromptRecord]]] = [[] for _ in contenders]
    for r in range(rounds):
        for i in round_order(len(contenders), r):
            runs[i].append(decode(contenders[i], r))
            if i in snapshots and r < rounds - 1:
                contenders[i].memory.restore(snapshots[i])
    return [[merge_rounds(list(per_prompt)) for per_prompt in zip(*per_round, strict=True)]
            for per_round in runs]  # fmt: skip


def merge_rounds(records: list[PromptRecord]) -> PromptRecord:
    """One prompt's records from every round -> one record, as the module docstring says."""
    first = records[0]
    if len(records) == 1:
        return first
    failed = next((r for r in records if r.get("status") != "ok"), None)
    if failed is not None:
        return failed
    for r, record in enumerate(records[1:], 2):
        if (reason := _difference(first, record)) is not None:
            error = NondeterministicRounds(
                f"prompt {first['prompt_id']} of suite {first['suite']} under "
                f"{first['strategy']} decoded differently in round {r} than in round 1 "
                f"({reason}): the run is not reproducible")  # fmt: skip
            return _failed(first, error)
    merged: PromptRecord = dict(first)  # type: ignore[assignment]
    for name in TIMED:
        values = [float(record[name]) for record in records]  # type: ignore[literal-required]
        merged[name] = statistics.median(values)  # type: ignore[literal-required]
        merged[f"round_{name}"] = values  # type: ignore[literal-required]
    merged["turns"] = [_merge_turn([record["turns"][t] for record in records])
                       for t in range(len(first["turns"]))]  # fmt: skip
    if len(merged["turns"]) > 1:  # a prompt's latency stays the sum of its turns'
        merged["wall_s"] = sum(turn["wall_s"] for turn in merged["turns"])
    merged["rounds"] = len(records)
    if all(record.get("peak_memory_bytes") is not None for record in records):
        merged["peak_memory_bytes"] = max(record["peak_memory_bytes"] for record in records)
    return merged


def _merge_turn(turns: list[dict[str, Any]]) -> dict[str, Any]:
    merged = dict(turns[0])
    for name in TURN_TIMED:
        merged[name] = statistics.median(float(turn[name]) for turn in turns)
    return merged


def _difference(first: PromptRecord, other: PromptRecord) -> str | None:
    """What differs between two rounds' records of a prompt, or None."""
    for name in DETERMINISTIC:
        a, b = first.get(name), other.get(name)
        if a == b:
            continue
        if isinstance(a, list) and isinstance(b, list):
            at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                      min(len(a), len(b)))  # fmt: skip
            return f"{name} first differ at index {at}"
        return f"{name} {a!r} vs {b!r}"
    return None


def _failed(record: PromptRecord, exc: BaseException) -> PromptRecord:
    return {key: record[key] for key in ("suite", "prompt_id", "category", "strategy",  # type: ignore[misc]
                                         "drafter", "batch_size") if key in record} | {
        "status": "failed", "error": record_error(exc)}


def timing_spread(record: PromptRecord) -> float | None:
    """(max - min) / median of a record's round times (its throughput time, `batch_share_s`,
    else `wall_s`); None for a record measured once or failed."""
    values = record.get("round_batch_share_s") or record.get("round_wall_s")
    if record.get("status", "ok") != "ok" or not values or len(values) < 2:
        return None
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if middle > 0 else None
