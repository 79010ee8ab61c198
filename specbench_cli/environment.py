"""What a results file records about the machine and the software a run used: versions, device,
the thread counts and CPU affinity a run pins (`pin_threads`), and what cannot be pinned, read
at the start and the end of a run (`machine_state`: load average, CPU and GPU clocks)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from specbench_cli import __version__


def environment(device: Any) -> dict[str, Any]:
    """Versions, device, CPU/GPU name, threads and the git commit of the code that ran."""
    import accelerate
    import torch
    import transformers

    from specbench_cli import cpu_matmul

    return {
        "specbench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "cpu": cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_matmul": cpu_matmul.mode() if device.type == "cpu" else None,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "git_sha": git_sha(),
    }


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def git_sha() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
            text=True, timeout=5).stdout.strip() or None  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None


BUSY_LOAD_PER_CORE = 0.5  # a 1-minute load average above this x cores: other work competes


def pin_threads() -> dict[str, Any]:
    """Pin torch's intra-op threads to at most the CPUs this process may run on (torch counts
    the machine's cores, so under a narrower affinity its threads would oversubscribe them),
    and record both thread counts and the affinity. Inter-op threads are recorded, not set:
    torch refuses to change them once any parallel work has run."""
    import torch

    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    if affinity and torch.get_num_threads() > len(affinity):
        torch.set_num_threads(len(affinity))
    return {"cpu_threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(), "cpu_affinity": affinity}


def machine_state(device: Any) -> dict[str, Any]:
    """What cannot be pinned, read now: load average (1, 5, 15 min), CPU clock per core where
    the system shows it, GPU clocks on a GPU (None where unreadable)."""
    return {"load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "cpu_mhz": cpu_mhz(), "gpu_clocks_mhz": gpu_clocks_mhz(device)}  # fmt: skip


def busy_warning(state: dict[str, Any], when: str, own_threads: int) -> str | None:
    """A warning when the machine's 1-minute load, less the run's own `own_threads` (which the
    load average counts too: a run alone on its cores ends at a load of about its threads), is
    above BUSY_LOAD_PER_CORE x its cores."""
    load, cores = state.get("load_average"), os.cpu_count() or 1
    if not load or load[0] - own_threads <= BUSY_LOAD_PER_CORE * cores:
        return None
    return (f"warning: the machine is busy at the {when} of the run (load average {load[0]:.2f}, "
            f"more than {BUSY_LOAD_PER_CORE:g} x its {cores} cores beyond the run's own "
            f"{own_threads} thread(s)): timings are noisier; timing_noise in the results says "
            "by how much")  # fmt: skip


def cpu_mhz() -> list[float] | None:
    """Current clock of each CPU in MHz: cpufreq where the kernel exposes it, else
    /proc/cpuinfo; None when neither is readable (some VMs and containers)."""
    root = Path("/sys/devices/system/cpu")
    files = sorted(root.glob("cpu[0-9]*/cpufreq/scaling_cur_freq"),
                   key=lambda p: int(p.parent.parent.name[3:]))  # fmt: skip
    try:
        if files:
            return [int(p.read_text()) / 1000 for p in files]  # kHz
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        mhz = [float(line.split(":", 1)[1]) for line in lines if line.startswith("cpu MHz")]
        return mhz or None
    except (OSError, ValueError):
        return None


GPU_CLOCKS = ("clocks.sm", "clocks.mem", "clocks.max.sm", "clocks.max.mem")


def gpu_clocks_mhz(device: Any) -> dict[str, float] | None:
    """SM and memory clocks (current and maximum) of a CUDA device from nvidia-smi; None off
    a GPU or without nvidia-smi."""
    if getattr(device, "type", None) != "cuda" or shutil.which("nvidia-smi") is None:
        return None
    index = device.index or 0
    try:
        query = ["nvidia-smi", f"--query-gpu={','.join(GPU_CLOCKS)}",
                 "--format=csv,noheader,nounits", "-i", str(index)]  # fmt: skip
        line = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout.strip()
        values = [float(v) for v in line.split(",")]
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return dict(zip(GPU_CLOCKS, values, strict=True)) if len(values) == len(GPU_CLOCKS) else None
