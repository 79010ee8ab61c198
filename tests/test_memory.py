"""Peak memory is measured per contender: a later, smaller contender does not inherit the peak
of an earlier, larger one (the process-lifetime peak would)."""

from __future__ import annotations

import torch

from specbench_cli.memory import PeakMemory

MIB = 1 << 20


def test_cpu_peak_is_reset_between_contenders() -> None:
    cpu = torch.device("cpu")
    with PeakMemory(cpu) as big:
        block = torch.ones(300 * MIB // 4)  # 300 MiB, touched
        del block
    with PeakMemory(cpu) as small:
        block = torch.ones(10 * MIB // 4)
        del block
    assert big.bytes - small.bytes > 200 * MIB, (big.bytes / MIB, small.bytes / MIB)
    assert small.bytes > 10 * MIB  # the resident process itself counts
