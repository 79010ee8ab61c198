"""A run folder: `records.jsonl` appended as each prompt finishes, `results.json` at the end.

The records file is the run's source of truth: each line is written and fsynced as soon as a
prompt x contender finishes, and the results are aggregated from what the file holds, so an
interruption at any moment leaves a folder whose results describe exactly its records.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from specbench_cli.errors import BadInput
from specbench_cli.results import (
    RECORDS_NAME,
    RESULTS_NAME,
    PromptRecord,
    ResultsFile,
    read_records,
    write_json_atomic,
)


class RunFolder:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def claim(cls, output: str | None) -> RunFolder:
        """The folder for a new run (`runs/<timestamp>` by default); one that already holds a
        run is bad input."""
        out = Path(output) if output else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
        if (out / RECORDS_NAME).exists():
            raise BadInput(f"--output {out}: already holds a run (records.jsonl); "
                           "choose a new folder")  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        return cls(out)

    @property
    def records_path(self) -> Path:
        return self.path / RECORDS_NAME

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS_NAME

    def append(self, record: PromptRecord) -> None:
        with self.records_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> list[PromptRecord]:
        return read_records(self.path)

    def write_results(self, data: ResultsFile) -> None:
        write_json_atomic(self.results_path, data)
