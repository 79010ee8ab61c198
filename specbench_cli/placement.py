"""Where a process puts its models: one device per process, or one model over several devices.

- A plain run keeps the old default: accelerate's `device_map="auto"` when GPUs are present,
  else the CPU.
- Under a launcher (data-parallel), each process loads its own copy on its own GPU,
  `cuda:LOCAL_RANK`, or on the CPU.
- `--device-map auto|balanced|sequential` (with `--max-memory`) hands the placement to
  accelerate's big-model loading: layers spread over the GPUs the process sees (and the CPU),
  for targets larger than one device. One such process per node.
- `--tensor-parallel` loads with transformers' tensor-parallel plan (`tp_plan="auto"` in its
  `DistributedConfig`): every process of the launch holds a slice of every layer, so they all
  decode the same prompts together (rank 0 records them).
"""

from __future__ import annotations

import re
from typing import Any

from specbench_cli.launch import Launch

DEVICE_MAPS = ("auto", "balanced", "sequential")
MEMORY_KEYS = ("cpu", "disk", "mps")
_SIZE = re.compile(r"^\d+(\.\d+)?\s*([KMGT]i?B|B)?$", re.IGNORECASE)


def parse_max_memory(text: str) -> dict[int | str, str]:
    """`0=20GiB,1=20GiB,cpu=60GiB` as accelerate's `max_memory` mapping; ValueError naming the
    bad entry otherwise."""
    memory: dict[int | str, str] = {}
    for entry in text.split(","):
        key, sep, size = (part.strip() for part in entry.partition("="))
        if not sep or not key or not _SIZE.match(size):
            raise ValueError(f"expected DEVICE=SIZE entries like 0=20GiB,cpu=60GiB (got {entry!r})")
        if key.isdigit():
            memory[int(key)] = size
        elif key.lower() in MEMORY_KEYS:
            memory[key.lower()] = size
        else:
            raise ValueError(f"device {key!r}: a GPU index or one of {', '.join(MEMORY_KEYS)}")
    return memory


def placement_problem(device_map: str | None, max_memory: str | None, tensor_parallel: bool,
                      launch: Launch) -> str | None:  # fmt: skip
    """Why these placement settings cannot run in this launch, or None."""
    if device_map is not None and device_map not in DEVICE_MAPS:
        return f"--device-map must be one of {', '.join(DEVICE_MAPS)} (got {device_map})"
    if max_memory is not None:
        if device_map is None:
            return "--max-memory needs --device-map (it caps accelerate's placement)"
        try:
            parse_max_memory(max_memory)
        except ValueError as exc:
            return f"--max-memory: {exc}"
    if tensor_parallel and device_map is not None:
        return "--tensor-parallel and --device-map are two ways to split a model; choose one"
    if tensor_parallel and not launch.distributed:
        return ("--tensor-parallel needs one process per device: start the run with torchrun "
                "--nproc-per-node N")
    if device_map is not None and launch.local_world_size > 1:
        return (f"--device-map {device_map} spreads one process's model over the GPUs of its "
                "node: start one process per node (--nproc-per-node 1), not "
                f"{launch.local_world_size}")
    return None


def placement_kwargs(device_map: str | None, max_memory: str | None, tensor_parallel: bool,
                     launch: Launch) -> dict[str, Any]:  # fmt: skip
    """The `from_pretrained` arguments that place a model as the module docstring says."""
    import torch

    if tensor_parallel:
        from transformers.distributed import DistributedConfig

        return {"distributed_config": DistributedConfig(tp_plan="auto")}
    if device_map is not None:
        kwargs: dict[str, Any] = {"device_map": device_map}
        if max_memory is not None:
            kwargs["max_memory"] = parse_max_memory(max_memory)
        return kwargs
    if not torch.cuda.is_available():
        return {}
    if launch.distributed:
        return {"device_map": {"": f"cuda:{launch.local_rank}"}}
    return {"device_map": "auto"}
