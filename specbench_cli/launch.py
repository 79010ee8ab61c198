"""Where this process stands in a launch by `torchrun` or `accelerate launch`.

Both launchers start one process per device and tell each its place through environment
variables (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `MASTER_ADDR`, ...); a
plain `specbench run` has none of them and is rank 0 of 1. The process group (gloo on CPUs,
nccl on GPUs) is used only at the start: to agree on the run folder and the work list, and to
wait until every process has loaded its models, so all decode side by side; everything later
goes through files, so a dead peer can never leave the others waiting in a collective call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

START_TIMEOUT = timedelta(minutes=10)  # the start handshake waits this long for slow peers


@dataclass(frozen=True)
class Launch:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def current_launch() -> Launch:
    """This process's rank, world size and place on its node, from the launcher's variables."""
    world = max(1, _env_int("WORLD_SIZE", 1))
    return Launch(rank=_env_int("RANK", 0), world_size=world,
                  local_rank=_env_int("LOCAL_RANK", 0),
                  local_world_size=max(1, _env_int("LOCAL_WORLD_SIZE", world)))  # fmt: skip


def reports_errors() -> bool:
    """Only rank 0 prints a run's one-line error: every rank finds the same bad input."""
    return current_launch().rank == 0


def join_group(launch: Launch) -> None:
    """Join the launcher's process group (nccl with one GPU per process, else gloo)."""
    import torch
    import torch.distributed as dist

    if not launch.distributed or dist.is_initialized():
        return
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(launch.local_rank)
        backend = "nccl"
    dist.init_process_group(backend, timeout=START_TIMEOUT)


def share_from_rank0(launch: Launch, value: Any) -> Any:
    """Rank 0's `value` in every process (one broadcast; a no-op outside a launch)."""
    if not launch.distributed:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_ready(launch: Launch) -> None:
    """Return when every process has reached this point (models loaded, warmed up); a process
    that died before is `LostProcess` (nothing was recorded yet)."""
    if not launch.distributed:
        return
    import torch.distributed as dist

    from specbench_cli.errors import LostProcess

    try:
        dist.barrier()
    except RuntimeError as exc:  # the backend's error when a peer's connection is gone
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LostProcess(f"a process of the run was lost before decoding started "
                          f"({first[:200]})") from None  # fmt: skip


def leave_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
