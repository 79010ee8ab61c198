"""Stop signals: Ctrl-C (SIGINT), SIGTERM and SIGHUP all end a command the same way.

CI time-outs, `timeout`, `docker stop` and Slurm send SIGTERM; a closed terminal sends SIGHUP.
Inside `stop_signals_raise()` each of them raises `Interrupted` in the main thread, so a run
keeps the records that finished, writes its results and says which signal stopped it. The exit
code is 128 + the signal number (the shell's convention): 130 for SIGINT, 143 for SIGTERM, 129
for SIGHUP.

`Interrupted` derives from BaseException, not KeyboardInterrupt, so it passes through code that
catches `Exception` (a failing prompt) and through the CLI framework, which would turn a
KeyboardInterrupt into a silent exit code. `signals_deferred()` holds the signals back while a
block that must run whole (appending one record line) runs; they arrive when it ends.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """A stop signal arrived; `exit_code` is 128 + its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextmanager
def _handling_stop_signals(handler: Any) -> Iterator[None]:
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def stop_signals_raise() -> AbstractContextManager[None]:
    """Within the block, every stop signal raises `Interrupted` (main thread only)."""
    return _handling_stop_signals(_raise)


def stop_signals_ignored() -> AbstractContextManager[None]:
    """Within the block, stop signals are ignored: the results of an interrupted run are
    written even when a second Ctrl-C or SIGTERM follows the first."""
    return _handling_stop_signals(signal.SIG_IGN)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Within the block, stop signals are held by the kernel and delivered when it ends, so the
    block runs to completion (a record line is written whole or not at all)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
