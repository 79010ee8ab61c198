"""The files of a run folder that several processes share (data-parallel and resumed runs).

Each process appends its records to its own `records.rank<N>.jsonl` (the same whole-line,
fsynced appends as `records.jsonl`) and writes `.rank<N>.json`: its host and device, and
whether it finished its share. Rank 0 waits for every process's `finished` mark, then merges:
`records.jsonl`, then the rank files, the last record of each prompt x contender winning, are
written back as one `records.jsonl` in the order a single process writes it, and the rank files
are removed. A process that dies leaves its finished records in its file; the next merge
(the end of the run on rank 0, or `--resume`) takes them in.

Processes on several nodes need the run folder on a file system they all share.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from specbench_cli.launch import Launch
from specbench_cli.results import (
    RECORDS_NAME,
    PromptRecord,
    read_record_file,
    write_json_atomic,
    write_text_atomic,
)
from specbench_cli.resume import latest_records
from specbench_cli.run_folder import append_record

RANK_RECORDS = "records.rank{}.jsonl"
RANK_INFO = ".rank{}.json"
POLL_S = 0.2


class RankRecords:
    """Where one process appends its records; `keep=False` discards them (a process that
    decodes the same prompts as rank 0, as under tensor parallelism)."""

    def __init__(self, folder: Path, rank: int, keep: bool = True) -> None:
        self.path = folder / RANK_RECORDS.format(rank)
        self.keep = keep

    def append(self, record: PromptRecord) -> None:
        if self.keep:
            append_record(self.path, record)


def write_rank_info(folder: Path, launch: Launch, device: Any, finished: bool) -> None:
    write_json_atomic(folder / RANK_INFO.format(launch.rank),
                      {"rank": launch.rank, "local_rank": launch.local_rank,
                       "host": socket.gethostname(), "pid": os.getpid(), "device": str(device),
                       "finished": finished})  # fmt: skip


def read_rank_infos(folder: Path) -> list[dict[str, Any]]:
    """The `.rank<N>.json` files present, by rank (a half-written one counts as absent)."""
    infos = []
    for path in folder.glob(RANK_INFO.format("*")):
        try:
            infos.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(infos, key=lambda info: info.get("rank", 0))


def clear_rank_infos(folder: Path) -> None:
    for path in folder.glob(RANK_INFO.format("*")):
        path.unlink(missing_ok=True)


def wait_for_ranks(folder: Path, world_size: int) -> None:
    """Until every rank has marked its share finished. A rank that dies never does: the
    launcher then stops this process with SIGTERM, which ends the wait (Interrupted)."""
    while True:
        finished = {info.get("rank") for info in read_rank_infos(folder) if info.get("finished")}
        if finished >= set(range(world_size)):
            return
        time.sleep(POLL_S)


def merge_records(folder: Path, order: Callable[[PromptRecord], Any]) -> list[PromptRecord]:
    """Fold the rank files into `records.jsonl` (see the module docstring); its records."""
    main = folder / RECORDS_NAME
    rank_files = sorted(folder.glob(RANK_RECORDS.format("*")))
    records = read_record_file(main)
    if not rank_files:
        return records
    for path in rank_files:
        records += read_record_file(path)
    merged = sorted(latest_records(records), key=order)
    write_text_atomic(main, "".join(json.dumps(r) + "\n" for r in merged))
    for path in rank_files:
        path.unlink(missing_ok=True)
    return merged
