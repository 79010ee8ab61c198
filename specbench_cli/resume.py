"""What a run folder already holds, for continuing an interrupted run (`--resume DIR`).

A record is identified by its grid point (the `grid` values a sweep stamps on it; none for a
plain run), suite, prompt, strategy and drafter. A prompt is done at a point when every
contender of that point has an `ok` record for it; anything less (a missing contender, a
failure, a record cut off by a kill) is run again for all contenders, so the speedup of every
prompt stays a ratio of back-to-back measurements. A record written again supersedes the
earlier one: `latest_records` keeps the last record of each key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from specbench_cli.results import PromptRecord

RecordKey = tuple[str, str, str, str, str]  # (point, suite, prompt id, strategy, drafter)


def point_key(grid: Mapping[str, Any] | None) -> str:
    """A stable string for a grid point's values ("{}" for a plain run)."""
    return json.dumps(dict(grid or {}), sort_keys=True)


def record_key(record: PromptRecord) -> RecordKey:
    return (point_key(record.get("grid")), record["suite"], str(record["prompt_id"]),
            record["strategy"], record["drafter"])  # fmt: skip


def latest_records(records: Iterable[PromptRecord]) -> list[PromptRecord]:
    """One record per key, the last one written, in the order those were written."""
    latest: dict[RecordKey, PromptRecord] = {}
    for record in records:
        key = record_key(record)
        latest.pop(key, None)  # re-insert: a rerun moves to where it was written
        latest[key] = record
    return list(latest.values())


def finished_keys(records: Iterable[PromptRecord]) -> set[RecordKey]:
    """Keys whose latest record finished (`status: ok`)."""
    return {record_key(r) for r in latest_records(records) if r.get("status") == "ok"}


def prompt_done(done: set[RecordKey], grid: Mapping[str, Any] | None, suite: str,
                prompt_id: str, contenders: Iterable[tuple[str, str]]) -> bool:  # fmt: skip
    """Every (strategy, drafter) of `contenders` finished this prompt at this point."""
    point = point_key(grid)
    return all((point, suite, str(prompt_id), strategy, drafter) in done
               for strategy, drafter in contenders)  # fmt: skip
