"""Peak memory of one contender, not of the process so far.

On CUDA the allocator's peak counter is reset before a contender runs and read after it: the
peak of allocated device memory while it ran (weights included). On the CPU, Linux keeps a
process high-water mark of resident memory (VmHWM) that `/proc/self/clear_refs` resets to the
current size; freed heap memory is first handed back to the OS (glibc `malloc_trim`, else it
stays resident), then the mark is reset before the contender and read after, so each contender
reports the peak resident memory while it ran (models included), whatever ran before it.
Where the kernel cannot reset it, the process-lifetime peak (getrusage) is reported instead.
"""

from __future__ import annotations

import re
import resource
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


class PeakMemory:
    """`with PeakMemory(device) as peak: ...` then `peak.bytes`."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self.bytes = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            _reset_cpu_peak()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            import torch

            self.bytes = int(torch.cuda.max_memory_allocated(self.device))
        else:
            self.bytes = _cpu_peak()


def _reset_cpu_peak() -> None:
    _trim_heap()
    try:
        _CLEAR_REFS.write_text("5")  # 5: reset the peak resident set size to the current one
    except OSError:
        pass


def _trim_heap() -> None:
    """Give memory freed by earlier contenders back to the OS (glibc keeps it resident, which
    would make every later peak read as the largest one so far)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _cpu_peak() -> int:
    try:
        found = re.search(r"VmHWM:\s+(\d+) kB", _STATUS.read_text())
        if found:
            return int(found.group(1)) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
