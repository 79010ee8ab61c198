"""Honest wall-clock timing: synchronise the device before reading the clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def device_sync(device: Any) -> Callable[[], None]:
    """A function that waits for `device` (a torch.device) to finish queued work; a no-op on
    the CPU, where work is synchronous."""
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        return lambda: torch.cuda.synchronize(device)
    return lambda: None
