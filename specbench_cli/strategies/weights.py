"""Row helpers shared by the rules: one `[B, V]` slice per row, and sampling one token per row
from unnormalized weights with the step's noise (docs/randomness.md: race and icdf modes, the
empty-residual fallback)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from specbench_cli.noise import Noise


def gather_rows(t: Tensor, index: Tensor) -> Tensor:
    """`t[b, index[b]]` for `t` `[B, R, V]` and `index` `[B]`: one `[B, V]` slice per row."""
    if t.shape[0] == 1:  # the engine's case: a view, no copy
        return t[0, int(index[0])][None]
    rows = torch.arange(t.shape[0], device=t.device)
    if t.is_contiguous():  # flat index_select is about twice as fast as advanced indexing
        return t.view(-1, t.shape[-1]).index_select(0, rows * t.shape[1] + index)
    return t[rows, index]


def sample_from_weights(weights: Tensor, noise: Noise, fallback: Tensor | None = None) -> Tensor:
    """One token per row from nonnegative unnormalized `weights` `[B, V]`.

    race: argmax of `w / e` over `w > 0` (lowest id on ties). icdf: smallest `y` with
    `cumsum(w)[y] > u * sum(w)`, summed in float64. Rows whose weights are all zero take a sample
    from `fallback` `[B, V]` with the same noise; without a fallback their id is arbitrary.
    """
    token, empty = _sample(weights, noise)
    if fallback is not None and bool(empty.any()):
        token = torch.where(empty, _sample(fallback, noise)[0], token)
    return token


def _sample(weights: Tensor, noise: Noise) -> tuple[Tensor, Tensor]:
    """(token [B], empty [B]) for one noise mode; `empty` marks all-zero weight rows."""
    if noise.mode == "icdf":
        cum = weights.double().cumsum(-1)
        total = cum[:, -1]
        token = torch.searchsorted(cum, (noise.u_fin.double() * total)[:, None], right=True)
        return token.squeeze(1).clamp_max(weights.shape[-1] - 1), total <= 0
    # Fast path: argmax of w / e with the NaN of 0 / 0 zeroed (w / 0 = inf is a valid winner).
    # A positive maximum is always a w > 0 token, the same argmax as the rule's score
    # (w / e if w > 0 else -1). Rows whose maximum is 0 (all-zero weights, or every w / e
    # underflowed) rerun the exact rule; a torch.where over the vocabulary is slow on CPU.
    ratio = (weights / noise.e_fin).nan_to_num_(nan=0.0, posinf=math.inf)
    token = ratio.argmax(-1)
    redo = ratio.gather(1, token[:, None]).squeeze(1) <= 0
    if not bool(redo.any()):
        return token, redo
    w, e = weights[redo], noise.e_fin[redo]
    score = torch.where(w > 0, w / e, -1.0)
    token[redo] = exact = score.argmax(-1)
    return token, redo.masked_scatter(redo, score.gather(1, exact[:, None]).squeeze(1) < 0)
