"""Few-row linear layers on the CPU as `W @ x^T`, the way a speculative step needs them.

A speculative step runs the target on the pending token plus up to k drafts: 2 to k+1 rows per
sequence. On the CPU, torch's `F.linear(x, W)` (`x @ W^T`) for a few rows takes a matrix-matrix
path that, on the project's machine (2-core AMD EPYC, torch 2.13 with MKL), costs 1.5-3x the
one-row call, although either reads each weight once: a forward pass of the default model over
2 tokens cost 1.7x one over 1 token. `torch.mm(W, x^T)` computes the same products at about the
one-row price (`benchmarks/bench_cpu_matmul.py` measures both, side by side). Without this, a
speculative step on the CPU pays for the BLAS call's shape, not for the tokens it verifies.

Only the BLAS call changes: the same products, summed in an order that may round differently in
the last bits. One-row calls (every plain decoding step) and calls over more than `MAX_ROWS` rows
(prefill) keep `F.linear`. Applied at load to float32 `nn.Linear` layers on the CPU;
`SPECBENCH_CPU_MATMUL=off` keeps `F.linear` everywhere, and results record the choice
(`environment.cpu_matmul`).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F

MAX_ROWS = 16  # measured: beyond this F.linear's own path is as fast or faster


class FewRowLinear(torch.nn.Linear):
    """`nn.Linear` whose forward over 2..MAX_ROWS rows is `(W @ x^T)^T`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1] if x.dim() > 1 else 1
        if rows < 2 or rows > MAX_ROWS:
            return F.linear(x, self.weight, self.bias)
        y = torch.mm(self.weight, x.reshape(rows, x.shape[-1]).t()).t()
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
