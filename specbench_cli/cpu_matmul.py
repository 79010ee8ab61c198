"""Few-row linear layers on the CPU, for the matrix products decoding steps need.

A decoding step runs the target on one token (a plain step) or on the pending token plus up to k
drafts (a speculative step: 2 to k+1 rows per sequence). Such a product is memory-bound: each
weight is read once, the rows sit in cache, so 1 to 16 rows should cost what one row costs. On
the CPU, torch's `F.linear(x, W)` does not get there for these shapes (2-core AMD EPYC, torch
2.13 with MKL): a slow matrix-vector path for one row, and for 2-16 rows matrix-matrix paths
whose cost jumps with the row count (5 rows up to 2x 4 rows). A benchmark on top of it would
charge speculation for BLAS quirks, not for the extra rows.

`FewRowLinear` sends 1-16 rows to the CPU extension's `few_row_linear` (`kernels/
few_row_matmul.cpp`: each weight row read once and dotted with every input row, AVX-512 or AVX2
picked at run time, prefetching ahead, output features split across torch's threads). Where the
extension cannot be built it falls back to `torch.mm(W, x^T)`, the fastest BLAS call for these
shapes (one row padded to two). Plain and speculative steps both take the same path, so
speculation is measured against a baseline as fast as this machine allows
(`benchmarks/bench_cpu_matmul.py` measures all three side by side).

Only the summation order changes: results equal F.linear's up to float32 rounding. Calls over
more than `MAX_ROWS` rows (prefill) keep `F.linear`. Applied at load to float32 `nn.Linear`
layers on the CPU; `SPECBENCH_CPU_MATMUL=off` keeps `F.linear` everywhere, and results record
the choice (`environment.cpu_matmul`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

MAX_ROWS = 16  # measured: beyond this F.linear's own path is as fast or faster


@functools.cache
def kernel() -> Callable | None:
    """The extension's `few_row_linear(x, w, bias)`, or None where it cannot be built."""
    from specbench_cli.kernels import few_row_linear

    return few_row_linear()


def mode() -> str:
    """What 1-16-row products run on, as results record it (`environment.cpu_matmul`)."""
    if not enabled():
        return "F.linear"
    return "few-row kernel" if kernel() is not None else "few-row W@x^T"


def mm_rows(flat: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The fallback: `(W @ x^T)^T` over 1..MAX_ROWS rows, row-major like `F.linear`'s output."""
    if len(flat) == 1:  # two rows take the matrix-matrix path, faster than one row's
        y = torch.mm(weight, flat.repeat(2, 1).t())[:, :1].t()
    else:  # row-major: the verify kernel reads logits row by row, and a transposed layout
        # would cost it a copy after the forward, with cold caches
        y = torch.mm(weight, flat.t()).t().contiguous()
    return y if bias is None else y + bias


class FewRowLinear(torch.nn.Linear):
    """`nn.Linear` whose forward over 1..MAX_ROWS rows runs the few-row kernel (`mm_rows` where
    it cannot be built)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if rows < 1 or rows > MAX_ROWS:
            return F.linear(x, self.weight, self.bias)
        flat = x.reshape(rows, x.shape[-1])
        run = kernel()
        if run is not None and self.weight.is_contiguous():
            y = run(flat.contiguous(), self.weight, self.bias)
        else:
            y = mm_rows(flat, self.weight, self.bias)
        return y.reshape(*x.shape[:-1], y.shape[-1])


def enabled() -> bool:
    return os.environ.get("SPECBENCH_CPU_MATMUL", "on").lower() not in ("0", "off", "false", "no")


def use_few_row_matmul(model: Any) -> int:
    """Turn `model`'s plain float32 CPU `nn.Linear` layers into `FewRowLinear` (layers under
    accelerate hooks, on other devices or of other dtypes stay as they are). Returns how many
    layers changed; 0 when switched off."""
    if not enabled():
        return 0
    changed = 0
    for module in model.modules():
        if (type(module) is torch.nn.Linear and not hasattr(module, "_hf_hook")
                and type(module.weight) is torch.nn.Parameter
                and module.weight.device.type == "cpu" and module.weight.dtype == torch.float32):
            module.__class__ = FewRowLinear
            changed += 1
    if changed:
        kernel()  # build (first use) and load now, not inside the first timed step
    return changed
