"""A run folder: `records.jsonl` appended as each prompt finishes, `results.json` at the end.

The records file is the run's source of truth: each line is written whole (stop signals held
back while it is written, the file cut back if a write fails) and fsynced as soon as a prompt x
contender finishes, and the results are aggregated from what the file holds, so an interruption
at any moment leaves a folder whose results describe exactly its records.

A run claims its folder with an exclusive lock (`flock` on `.specbench.lock`, held until the
run ends and released by the kernel if the process dies), so two runs started at once with the
same `--output` cannot both write it: the second one is bad input before any model loads. A
folder that already holds a run, finished, interrupted or killed, is refused with a description
of what it holds.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from specbench_cli.errors import BadInput, SpecbenchError
from specbench_cli.interrupts import Interrupted, signals_deferred
from specbench_cli.results import (
    RECORDS_NAME,
    RESULTS_NAME,
    PromptRecord,
    ResultsFile,
    read_records,
    write_json_atomic,
    write_text_atomic,
)

LOCK_NAME = ".specbench.lock"
RUN_CONFIG_NAME = "run.yaml"


@dataclass
class RunOutcome:
    """What a finished (or stopped) run leaves: its folder and the results written there."""

    folder: Path
    results: ResultsFile
    stopped_by: Interrupted | None  # the stop signal that ended decoding early, if any


class RunFolder:
    """A claimed run folder; `release()` (or the end of the process) frees it."""

    def __init__(self, path: Path, lock_fd: int, created: bool) -> None:
        self.path = path
        self._lock_fd: int | None = lock_fd
        self._created = created  # this run made the folder: it may remove it if nothing ran

    @classmethod
    def claim(cls, output: str | None) -> RunFolder:
        """Create (or open) and lock the folder for a new run (`runs/<timestamp>` by default).
        Another run holding it, or a run already in it, is bad input."""
        out = Path(output) if output else Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
        created = not out.exists()
        folder = cls(out, _lock(out, "--output"), created)
        if previous := describe_previous_run(out):
            folder.release()
            raise BadInput(f"--output {out}: {previous}; choose a new folder")
        return folder

    @classmethod
    def reopen(cls, path: str | Path) -> RunFolder:
        """The folder of an earlier run, locked, to continue it (`--resume`): records are
        appended after a last line a killed run left unfinished is cut."""
        folder = Path(path)
        if not folder.is_dir():
            raise BadInput(f"--resume {folder}: no such run folder")
        reopened = cls(folder, _lock(folder, "--resume"), created=False)
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
        """Append one record line, whole or not at all, and fsync it."""
        append_record(self.records_path, record)

    def write_config(self, text: str) -> None:
        """The run's settings (`run.yaml`), so `--resume` continues with exactly these."""
        write_text_atomic(self.path / RUN_CONFIG_NAME, text)

    def records(self) -> list[PromptRecord]:
        return read_records(self.path)

    def write_results(self, data: ResultsFile) -> None:
        write_json_atomic(self.results_path, data)

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        """Leaving the run: a run that recorded nothing leaves no folder it created behind;
        the lock is freed either way."""
        if kind is not None:
            self.discard_if_unused()
        self.release()

    def release(self) -> None:
        """Free the folder for other runs (the lock file stays: removing it could let two
        later runs lock two different files)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def discard_if_unused(self) -> None:
        """After a run that recorded nothing (it failed or was stopped while loading): remove
        the folder if this run created it, so no empty run folders pile up."""
        if self._created and not self.records_path.exists() and not self.results_path.exists():
            if {p.name for p in self.path.iterdir()} <= {LOCK_NAME, RUN_CONFIG_NAME}:
                shutil.rmtree(self.path, ignore_errors=True)


def append_record(path: Path, record: PromptRecord) -> None:
    """Append one record line to `path`, whole or not at all (stop signals held back, the file
    cut back if the write fails), and fsync it."""
    line = (json.dumps(record) + "\n").encode()
    with signals_deferred():
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        start = os.fstat(fd).st_size
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as exc:
            os.ftruncate(fd, start)  # no partial line for a later reader to trip on
            raise SpecbenchError(f"{path}: cannot write a record "
                                 f"({exc.strerror or exc})") from None  # fmt: skip
        finally:
            os.close(fd)


def _lock(out: Path, flag: str) -> int:
    """Create `out` if needed and take its lock (the pid written into it); bad input when
    another specbench process holds it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise BadInput(f"{flag} {out}: cannot create the run folder "
                       f"({exc.strerror or exc})") from None  # fmt: skip
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise BadInput(f"{flag} {out}: another specbench run (pid {holder}) is writing "
                       "to this folder now; choose a new folder") from None  # fmt: skip
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def describe_previous_run(folder: Path) -> str | None:
    """What an earlier run left in `folder`, in words; None when it holds no run."""
    records = folder / RECORDS_NAME
    results = folder / RESULTS_NAME
    count = _count_lines(records)
    if results.exists():
        status = _results_status(results)
        if status == "complete":
            return f"already holds a finished run ({RESULTS_NAME}, {count} records)"
        return (f"already holds an interrupted run ({count} records; {RESULTS_NAME} status "
                f"{status!r})")  # fmt: skip
    if records.exists():
        return (f"holds an unfinished run: {count} records and no {RESULTS_NAME} (the process "
                "was killed before it could write its results)")  # fmt: skip
    return None


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for line in f if line.endswith(b"\n"))
    except OSError:
        return 0


def _results_status(path: Path) -> Any:
    try:
        return json.loads(path.read_text()).get("status", "unknown")
    except (OSError, ValueError, AttributeError):
        return "unreadable"
