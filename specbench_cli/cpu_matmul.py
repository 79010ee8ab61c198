"""Linear layers on the CPU at the speed this machine allows, for decoding steps and prefills.

A decoding step runs the target on one token (a plain step) or on the pending token plus up to k
drafts (a speculative step: 2 to k+1 rows per sequence). Such a product is memory-bound: each
weight is read once, the rows sit in cache, so a few rows should cost what one row costs. On
the CPU, torch's `F.linear(x, W)` does not get there (2-core AMD EPYC, torch 2.13 with MKL): a
slow matrix-vector path for one row, and for 2-16 rows matrix-matrix paths whose cost jumps with
the row count (5 rows up to 2x 4 rows). Over many rows (a prefill, a batch's verify pass) MKL's
GEMM runs at about half of what oneDNN's reaches on this CPU. A benchmark on top of it would
charge speculation for BLAS quirks, not for the extra rows, and overstate the prefill's share.

`CpuLinear` sends up to `KERNEL_ROWS` rows to the CPU extension's `few_row_linear` (`kernels/
few_row_matmul.cpp`: each weight row read once and dotted with every input row, AVX-512 or AVX2
picked at run time, prefetching ahead, output features split across torch's threads); where the
extension cannot be built, to `torch.mm(W, x^T)`, the fastest BLAS call for these shapes (one row
padded to two). More rows go to oneDNN's linear (`torch.ops.mkldnn._linear_pointwise`, the plain
weight as it is: no second copy of the model), or `F.linear` where torch lacks oneDNN or autograd
is recording. Plain and speculative steps take the same paths, so speculation is measured against
a baseline as fast as this machine allows (`benchmarks/bench_cpu_matmul.py` measures them side by
side).

Only the summation order changes: results equal F.linear's up to float32 rounding. Applied at load
to float32 `nn.Linear` layers on the CPU; `SPECBENCH_CPU_MATMUL=off` keeps `F.linear` everywhere,
and results record the choice (`environment.cpu_matmul`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

MAX_ROWS = 16  # the kernel's limit (and `mm_rows`'): one register block per input row
KERNEL_ROWS = 12  # measured: from 13 rows on, oneDNN's GEMM is as fast or faster


@functools.cache
def kernel() -> Callable | None:
    """The extension's `few_row_linear(x, w, bias)`, or None where it cannot be built."""
    from specbench_cli.kernels import few_row_linear

    return few_row_linear()


@functools.cache
def onednn() -> Callable | None:
    """oneDNN's linear `(x, w, bias) -> y` on plain float32 tensors, or None where this torch
    lacks it (built without oneDNN) or it does not compute `F.linear` on a probe."""
    op = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    if op is None or not torch.backends.mkldnn.is_available():
        return None

    def run(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return op(x, weight, bias, "none", [], "")

    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(*s, generator=g) for s in ((20, 24), (8, 24), (8,)))
    try:
        ok = torch.allclose(run(x, w, b), F.linear(x, w, b), rtol=1e-4, atol=1e-4)
    except RuntimeError:
        ok = False
    return run if ok else None


def mode() -> str:
    """What products run on, as results record it (`environment.cpu_matmul`): few rows, then
    many rows."""
    if not enabled():
        return "F.linear"
    few = "few-row kernel" if kernel() is not None else "few-row W@x^T"
    return f"{few} + {'oneDNN' if onednn() is not None else 'F.linear'}"


def mm_rows(flat: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The fallback: `(W @ x^T)^T` over 1..MAX_ROWS rows, row-major like `F.linear`'s output."""
    if len(flat) == 1:  # two rows take the matrix-matrix path, faster than one row's
        y = torch.mm(weight, flat.repeat(2, 1).t())[:, :1].t()
    else:  # row-major: the verify kernel reads logits row by row, and a transposed layout
        # would cost it a copy after the forward, with cold caches
        y = torch.mm(weight, flat.t()).t().contiguous()
    return y if bias is None else y + bias


class CpuLinear(torch.nn.Linear):
    """`nn.Linear` whose forward runs the few-row kernel (`mm_rows` where it cannot be built) over
    1..KERNEL_ROWS rows and oneDNN over more (`F.linear` where there is none)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if rows < 1 or (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)):
            return F.linear(x, self.weight, self.bias)
        flat = x.reshape(rows, x.shape[-1])
        if rows > KERNEL_ROWS:
            run = onednn()
            if run is None:
                return F.linear(x, self.weight, self.bias)
            y = run(flat.contiguous(), self.weight, self.bias)
        elif (run := kernel()) is not None and self.weight.is_contiguous():
            y = run(flat.contiguous(), self.weight, self.bias)
        else:
            y = mm_rows(flat, self.weight, self.bias)
        return y.reshape(*x.shape[:-1], y.shape[-1])


def enabled() -> bool:
    return os.environ.get("SPECBENCH_CPU_MATMUL", "on").lower() not in ("0", "off", "false", "no")


def use_cpu_matmul(model: Any) -> int:
    """Turn `model`'s plain float32 CPU `nn.Linear` layers into `CpuLinear` (layers under
    accelerate hooks, on other devices or of other dtypes stay as they are). Returns how many
    layers changed; 0 when switched off."""
    if not enabled():
        return 0
    changed = 0
    for module in model.modules():
        if (type(module) is torch.nn.Linear and not hasattr(module, "_hf_hook")
                and type(module.weight) is torch.nn.Parameter
                and module.weight.device.type == "cpu" and module.weight.dtype == torch.float32):
            module.__class__ = CpuLinear
            changed += 1
    if changed:
        kernel()  # build (first use) and load now, not inside the first timed step
        onednn()
    return changed
