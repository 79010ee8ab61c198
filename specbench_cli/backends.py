"""Verification backends: which one runs a step, and how a step reaches a compiled kernel.

The PyTorch reference (`strategies.base.reference_verify`) defines the semantics; the C++ CPU
twin and the CUDA kernels (`kernels.py`) must emit the same tokens for the same inputs. This
module resolves a backend name for a device (`auto`: the compiled kernel of that device when it
builds, else the reference), gives each strategy the driver of its backend, and runs a step on a
kernel from the rule's own `KernelDesc`. It names no strategy: a rule without a kernel, or a
kernel that cannot be built here, runs on the reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from specbench_cli import kernels
from specbench_cli.choices import BACKENDS
from specbench_cli.strategies.base import REFERENCE, Driver, VerifyResult
from specbench_cli.strategies.inputs import LogitsStep, check_values
from specbench_cli.strategies.rows import flat_drafts, verify_rows_via_tensors

if TYPE_CHECKING:
    import torch

    from specbench_cli.noise import Noise
    from specbench_cli.sampling import SamplingConfig


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

    def __call__(self, strategy: Any, target_probs: torch.Tensor, draft_probs: torch.Tensor | None,
                 draft_tokens: torch.Tensor, noise: Noise | None,
                 target_logits: torch.Tensor | None, num_drafts: torch.Tensor | None,
                 validate: bool) -> VerifyResult:  # fmt: skip
        args = (target_probs, draft_probs, draft_tokens, noise, target_logits, num_drafts)
        where = self._where(strategy, target_probs.device)
        if where == "torch":
            return REFERENCE(strategy, *args, validate)
        tokens, accepted, status = kernels.launch(
            where, strategy.kernel, target_probs, draft_probs, draft_tokens, noise, num_drafts,
            target_logits, validate=validate)  # fmt: skip
        _check_status(status, validate, lambda: check_values(
            target_probs, draft_probs, draft_tokens, target_logits, num_drafts))  # fmt: skip
        return VerifyResult(tokens, accepted)

    def from_logits(self, strategy: Any, step: LogitsStep, noise: Noise | None,
                    validate: bool) -> VerifyResult:  # fmt: skip
        """The CPU kernel processes logits itself (temperature, top-k, softmax); top-p, which
        needs a sort, and the other backends process them with `specbench_cli.sampling`."""
        cfg = step.sampling
        if cfg.top_p < 1.0 or self._where(strategy, step.target_logits.device) != "cpu":
            q, p, processed = step.processed()
            return self(strategy, q, p, step.draft_tokens, noise, processed, step.num_drafts,
                        validate)  # fmt: skip
        draft_logits = step.draft_logits is not None
        tokens, accepted, status = kernels.launch(
            "cpu", strategy.kernel, step.target_logits,
            step.draft_logits if draft_logits else step.draft_probs, step.draft_tokens, noise,
            step.num_drafts, logits=(draft_logits, cfg.temperature, cfg.top_k), validate=validate)

        def reference_checks() -> None:
            q, p, processed = step.processed()
            check_values(q, p, step.draft_tokens, processed, step.num_drafts)

        _check_status(status, validate, reference_checks)
        return VerifyResult(tokens, accepted)

    def rows(self, strategy: Any, target_logits: torch.Tensor, draft_probs: torch.Tensor | None,
             drafts: list[list[int]], sampling: SamplingConfig, seeds: list[int],
             counters: list[int]) -> tuple[list[int], list[int]]:  # fmt: skip
        """The CPU twin takes the engine's lists itself (`kernels.verify_rows`); top-p (a sort)
        and the other backends go through `verify_logits`."""
        if sampling.top_p < 1.0 or self._where(strategy, target_logits.device) != "cpu":
            return verify_rows_via_tensors(strategy, target_logits, draft_probs, drafts,
                                           sampling, seeds, counters)  # fmt: skip
        ids, counts = flat_drafts(drafts, target_logits.shape[1] - 1)
        status, accepted, emitted = kernels.verify_rows(
            strategy.kernel, target_logits, draft_probs, ids, counts, seeds, counters,
            sampling.temperature, sampling.top_k)  # fmt: skip
        _check_status(status, False, lambda: None)
        return accepted, emitted

    def _where(self, strategy: Any, device: torch.device) -> str:
        if strategy.kernel is None:
            return "torch"
        if self.name == "cpu" and device.type == "cpu" and kernels.cpu_kernel_available():
            return "cpu"  # the engine's case, without resolve_backend's checks
        return resolve_backend(self.name, device)


def _check_status(status: int, validate: bool, reference_checks: Callable[[], None]) -> None:
    """A kernel reported bad inputs: with `validate`, the reference's checks raise their own
    `ValueError` (a value within rounding of a tolerance may pass them: the outputs stand);
    bad ids without validation are a `RuntimeError`."""
    if not status:
        return
    if validate:
        reference_checks()
        if status == kernels.BAD_VALUES:
            return
    raise RuntimeError(f"specbench verify: {kernels.STATUS_TEXT[status]}")


def driver(backend: str) -> Driver:
    """The driver a strategy built for `backend` verifies with."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} not available (available: {', '.join(BACKENDS)})")
    return REFERENCE if backend == "torch" else CompiledDriver(backend)
