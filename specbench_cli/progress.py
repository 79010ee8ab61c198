"""Progress of long commands on stderr: a live bar in a terminal, plain lines in CI logs.

A command reports stages (loading models, warm-up: no count yet), notes (lines that stay) and
counted work (`advance`: done of total, what runs now, a rate). In a terminal a rich progress
bar shows the stage or the count with the time elapsed and an estimate of the time left; when
stderr is not a terminal (a CI log, a file) the same information is printed as plain lines: each
stage and note, and a count line at most every `SPECBENCH_PROGRESS_INTERVAL` seconds (default
10), always for the first and the last item. The estimate is the mean time per finished item so
far times the items left.
"""

from __future__ import annotations

import os
import time
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

DEFAULT_INTERVAL_S = 10.0


class ProgressReport(Protocol):
    def stage(self, text: str) -> None:
        """A step without a count (loading a model, warming up)."""

    def note(self, text: str) -> None:
        """A line that stays in the output (what a suite holds, what is scored)."""

    def advance(self, done: int, total: int, current: str, rate: str = "") -> None:
        """`done` of `total` items finished, `current` runs now, `rate` e.g. "41 tok/s"."""


class NoProgress:
    """Reports nothing (library use, tests)."""

    def stage(self, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def advance(self, done: int, total: int, current: str, rate: str = "") -> None:
        pass


def clock(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` from one hour."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class _Counter:
    """Elapsed time since the first `advance` and the estimate of the time left."""

    def __init__(self) -> None:
        self.started: float | None = None

    def detail(self, done: int, total: int, rate: str) -> str:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        elapsed = now - self.started
        left = f"~{clock(elapsed / done * (total - done))} left" if 0 < done < total else ""
        parts = [f"{done}/{total}", rate, f"{clock(elapsed)} elapsed", left]
        return ", ".join(part for part in parts if part)


class LogProgress:
    """Plain lines for logs: stages and notes at once, counts at a fixed interval."""

    def __init__(self, console: Console, interval_s: float | None = None) -> None:
        self.console = console
        env = os.environ.get("SPECBENCH_PROGRESS_INTERVAL")
        self.interval_s = interval_s if interval_s is not None else float(
            env if env else DEFAULT_INTERVAL_S)
        self.counter = _Counter()
        self.last_line = -float("inf")

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def _line(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def stage(self, text: str) -> None:
        self._line(f"{text} ...")

    def note(self, text: str) -> None:
        self._line(text)

    def advance(self, done: int, total: int, current: str, rate: str = "") -> None:
        detail = self.counter.detail(done, total, rate)
        now = time.monotonic()
        if done in (1, total) or now - self.last_line >= self.interval_s:
            self.last_line = now
            self._line(f"[{100 * done // max(total, 1):3d}%] {detail} | {current}")


class TerminalProgress:
    """A live bar on a terminal: the stage or the current item, done/total, rate, times."""

    def __init__(self, console: Console) -> None:
        self.counter = _Counter()
        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.fields[detail]}"), console=console,
                            transient=True)  # fmt: skip
        self.task = self.bar.add_task("", total=None, detail="")

    def __enter__(self) -> TerminalProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.stop()

    def stage(self, text: str) -> None:
        self.bar.update(self.task, description=text, total=None, detail="")

    def note(self, text: str) -> None:
        self.bar.console.print(text, highlight=False, markup=False)

    def advance(self, done: int, total: int, current: str, rate: str = "") -> None:
        self.bar.update(self.task, description=current, completed=done, total=total,
                        detail=self.counter.detail(done, total, rate))  # fmt: skip


def open_progress(console: Console) -> LogProgress | TerminalProgress:
    """The report that suits `console` (use it as a context manager): a live bar when it is a
    terminal, plain lines otherwise."""
    return TerminalProgress(console) if console.is_terminal else LogProgress(console)
