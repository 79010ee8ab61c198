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

    @classmethod
    def reopen(cls, path: str | Path) -> RunFolder:
        """The folder of an earlier run, to continue it (`--resume`): records are appended."""
        folder = Path(path)
        if not folder.is_dir():
            raise BadInput(f"--resume {folder}: no such run folder")
        reopened = cls(folder)
        reopened.drop_partial_line()
        return reopened

    def drop_partial_line(self) -> None:
        """Cut a last record line that a killed run left unfinished, so appends start on a
        line of their own (readers skip such a line; `--resume` reruns its prompt)."""
        if not self.records_path.is_file():
            return
        data = self.records_path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.records_path.open("r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)

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
