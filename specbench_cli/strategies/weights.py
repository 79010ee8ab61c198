"""Row helpers shared by the rules: one `[B, V]` slice per row, and sampling one token per row
from unnormalized weights with the step's final draw (docs/randomness.md: the fixed-point
inverse CDF and the empty-residual fallback)."""

from __future__ import annotations

import torch
from torch import Tensor

from specbench_cli.philox import mulhi64

FIXED_SCALE = 2.0**44  # weights become integers floor(w * 2^44): kernels/verify.h kFixedShift


def gather_rows(t: Tensor, index: Tensor) -> Tensor:
    """`t[b, index[b]]` for `t` `[B, R, V]` and `index` `[B]`: one `[B, V]` slice per row."""
    if t.shape[0] == 1:  # the engine's case: a view, no copy
        return t[0, int(index[0])][None]
    rows = torch.arange(t.shape[0], device=t.device)
    if t.is_contiguous():  # flat index_select is about twice as fast as advanced indexing
        return t.view(-1, t.shape[-1]).index_select(0, rows * t.shape[1] + index)
    return t[rows, index]


def fixed_point(weights: Tensor) -> Tensor:
    """Exact integer weights `floor(w * 2^44)` (0 where `w <= 0` or NaN), int64 `[B, V]`."""
    return torch.where(weights > 0, weights * FIXED_SCALE, 0.0).long()


def sample_from_weights(weights: Tensor, draws: Tensor, fallback: Tensor | None = None) -> Tensor:
    """One token per row from nonnegative unnormalized `weights` `[B, V]` and 64-bit `draws`
    `[B]`: with `W = floor(w * 2^44)` and `T = sum W`, the smallest `y` whose prefix sum of `W`
    exceeds `floor(r * T / 2^64)`, in exact integer arithmetic. Rows whose `T` is 0 take a sample
    from `fallback` `[B, V]` with the same draw; without a fallback their id is 0."""
    token, empty = _sample(weights, draws)
    if fallback is not None and bool(empty.any()):
        token = torch.where(empty, _sample(fallback, draws)[0], token)
    return token


def _sample(weights: Tensor, draws: Tensor) -> tuple[Tensor, Tensor]:
    """(token [B], empty [B]); `empty` marks rows whose fixed-point total is 0."""
    cum = fixed_point(weights).cumsum(-1)
    total = cum[:, -1]
    target = mulhi64(draws, total)  # < total whenever total > 0
    token = torch.searchsorted(cum, target[:, None], right=True).squeeze(1)
    return token.clamp_max(weights.shape[-1] - 1).masked_fill(total <= 0, 0), total <= 0
