"""Few-row linear layers on the CPU as `W @ x^T`, the way decoding steps need them.

A decoding step runs the target on one token (a plain step) or on the pending token plus up to k
drafts (a speculative step: 2 to k+1 rows per sequence). On the CPU, torch's `F.linear(x, W)`
(`x @ W^T`) takes, for these shapes, BLAS paths that are far from what reading each weight once
allows on the project's machine (2-core AMD EPYC, torch 2.13 with MKL): for 2-16 rows a
matrix-matrix path at 1.5-3x the one-row call, and for one row a matrix-vector path slower than
the matrix-matrix product over two rows. `torch.mm(W, x^T)` over at least two rows is the fast
one, so a single row is padded to two (itself twice) and the first column kept
(`benchmarks/bench_cpu_matmul.py` measures both ways side by side). Both kinds of step get the
fast path: speculation is measured against a baseline that is as fast as this machine allows,
not against a slow matrix-vector product.

Only the BLAS call changes: the same products, summed in an order that may round differently in
the last bits. Calls over more than `MAX_ROWS` rows (prefill) keep `F.linear`. Applied at load to
float32 `nn.Linear` layers on the CPU; `SPECBENCH_CPU_MATMUL=off` keeps `F.linear` everywhere,
and results record the choice (`environment.cpu_matmul`).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F

MAX_ROWS = 16  # measured: beyond this F.linear's own path is as fast or faster


class FewRowLinear(torch.nn.Linear):
    """`nn.Linear` whose forward over 1..MAX_ROWS rows is `(W @ x^T)^T`, one row padded to two."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if rows < 1 or rows > MAX_ROWS:
            return F.linear(x, self.weight, self.bias)
        flat = x.reshape(rows, x.shape[-1])
        if rows == 1:  # two rows take the matrix-matrix path, faster than one row's
            y = torch.mm(self.weight, flat.repeat(2, 1).t())[:, :1].t()
        else:  # row-major like F.linear's output: the verify kernel reads logits row by row,
            # and a transposed layout would cost it a copy after the forward, with cold caches
            y = torch.mm(self.weight, flat.t()).t().contiguous()
        if self.bias is not None:
            y = y + self.bias
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
    return changed
