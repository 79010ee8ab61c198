"""Verification backends: which one runs a step, and how a step reaches a compiled kernel.

The PyTorch reference (`strategies.base.reference_verify`) defines the semantics; the C++ CPU
twin and the CUDA kernels (`kernels.py`) must emit the same tokens for the same inputs. This
module resolves a backend name for a device (`auto`: the compiled kernel of that device when it
builds, else the reference), gives each strategy the driver of its backend, and runs a step on a
kernel from the rule's own `KernelDesc`. It names no strategy: a rule without a kernel, or a
kernel that cannot be built here, runs on the reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from specbench_cli import kernels
from specbench_cli.choices import BACKENDS
from specbench_cli.strategies.base import REFERENCE, Driver, VerifyResult, reference_verify

if TYPE_CHECKING:
    import torch


def resolve_backend(backend: str, device: torch.device | str | None = None) -> str:
    """Concrete backend for tensors on `device`: `auto` takes the compiled kernel of that device
    when it builds (it is faster than the reference at every benchmarked shape), else `torch`;
    an explicit `cpu`/`cuda` that cannot be built falls back to `torch` after one warning."""
    import torch

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    dev = torch.device(device if device is not None else "cpu")
    if backend == "torch":
        return "torch"
    if backend == "auto":
        if dev.type == "cuda":
            return "cuda" if kernels.cuda_kernel_available() else "torch"
        return "cpu" if dev.type == "cpu" and kernels.cpu_kernel_available() else "torch"
    if dev.type != backend:
        raise ValueError(f"backend {backend!r} cannot run on tensors on {dev}")
    if backend == "cpu":
        return "cpu" if kernels.cpu_kernel_available() else "torch"
    if kernels.cuda_kernel_available():
        return "cuda"
    if kernels.kernels_enabled():
        kernels.warn_once("the cuda verify kernel is unavailable; using the PyTorch reference")
    return "torch"


class CompiledDriver:
    """Runs a step on the compiled kernel of `name` (cpu, cuda, or auto by tensor device)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, strategy: Any, target_probs: torch.Tensor, *args: Any) -> VerifyResult:
        desc = strategy.kernel
        where = "torch" if desc is None else self._resolve(target_probs.device)
        if where == "torch":
            return reference_verify(strategy, target_probs, *args)
        draft_probs, draft_tokens, noise, target_logits, num_drafts = args
        tokens, num_accepted = kernels.launch(
            where, desc, target_probs, draft_probs, draft_tokens, noise, num_drafts, target_logits
        )
        return VerifyResult(tokens, num_accepted)

    def _resolve(self, device: torch.device) -> str:
        if self.name == "cpu" and device.type == "cpu" and kernels.cpu_kernel_available():
            return "cpu"  # the engine's case, without resolve_backend's checks
        return resolve_backend(self.name, device)


def driver(backend: str) -> Driver:
    """The driver a strategy built for `backend` verifies with."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} not available (available: {', '.join(BACKENDS)})")
    return REFERENCE if backend == "torch" else CompiledDriver(backend)
