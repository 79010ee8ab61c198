"""Checks of a verification step's inputs, the contract every backend relies on.

Shapes are always checked; values (finite, nonnegative, live rows summing to 1 within
`SUM_TOL`, draft ids in range, `num_drafts` within [0, k]) only when asked, since the engine's
own softmax cannot produce bad values and the checks would cost more than a compiled kernel.
Inputs come back cast to float32 / int64: probabilities are not renormalized, so every backend
sees the same bits.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

SUM_TOL = 1e-3  # probability rows must sum to 1 within this


def checked(target_probs: Tensor, draft_probs: Tensor | None, draft_tokens: Tensor,
            target_logits: Tensor | None, num_drafts: Tensor | None, validate: bool,
            ) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None, Tensor | None]:  # fmt: skip
    """`(target_probs, draft_probs, draft_tokens, target_logits, num_drafts)`, checked and cast;
    `ValueError` on anything a backend cannot take."""
    if not isinstance(draft_tokens, Tensor) or draft_tokens.ndim != 2 or not _is_int(draft_tokens):
        raise ValueError(
            f"draft_tokens must be an integer [B, k] tensor, got {_desc(draft_tokens)}"
        )
    B, k = draft_tokens.shape
    V = target_probs.shape[-1] if isinstance(target_probs, Tensor) and target_probs.ndim else 0
    _expect("target_probs", target_probs, (B, k + 1, max(V, 1)), "[B, k+1, V], bonus row last")
    _expect("draft_probs", draft_probs, (B, k, V), "None or [B, k, V]", optional=True)
    _expect("target_logits", target_logits, (B, k + 1, V), "None or [B, k+1, V]", optional=True)
    _expect("num_drafts", num_drafts, (B,), "None or an integer [B]", optional=True, integer=True)

    target_probs = target_probs.float()
    draft_probs = None if draft_probs is None else draft_probs.float()
    target_logits = None if target_logits is None else target_logits.float()
    draft_tokens = draft_tokens.long()
    num_drafts = None if num_drafts is None else num_drafts.long()
    if validate:
        _check_values(target_probs, draft_probs, draft_tokens, target_logits, num_drafts)
    return target_probs, draft_probs, draft_tokens, target_logits, num_drafts


def _check_values(target_probs: Tensor, draft_probs: Tensor | None, draft_tokens: Tensor,
                  target_logits: Tensor | None, num_drafts: Tensor | None) -> None:  # fmt: skip
    B, k = draft_tokens.shape
    V = target_probs.shape[-1]
    live = None
    if num_drafts is not None and B:
        lo, hi = num_drafts.aminmax()
        if lo < 0 or hi > k:
            raise ValueError(f"num_drafts must lie in [0, k={k}], got [{int(lo)}, {int(hi)}]")
        live = torch.arange(k + 1, device=num_drafts.device) <= num_drafts[:, None]  # [B, k+1]
    check_probs("target_probs", target_probs, live)
    if draft_probs is not None:
        check_probs("draft_probs", draft_probs, None if live is None else live[:, 1:])
    if k * B:
        ids = draft_tokens if live is None else draft_tokens.masked_fill(~live[:, 1:], 0)
        lo, hi = ids.aminmax()
        if lo < 0 or hi >= V:
            raise ValueError(f"draft_tokens must lie in [0, V={V}), got [{int(lo)}, {int(hi)}]")
    if target_logits is not None and bool(torch.isnan(target_logits).any()):
        raise ValueError("target_logits contain NaN")


def check_probs(name: str, t: Tensor, live: Tensor | None) -> None:
    """Finite, >= 0 everywhere; rows that take part (`live` `[B, R]`) sum to 1 within SUM_TOL."""
    if t.numel() == 0:
        return
    if not bool(t.amin() >= 0):  # also catches NaN
        raise ValueError(f"{name} must be nonnegative and not NaN")
    off = ~((t.sum(-1) - 1).abs() <= SUM_TOL)  # [B, R]; an inf sum counts as off
    if live is not None:
        off &= live
    if bool(off.any()):
        b, j = (int(i) for i in off.nonzero()[0])
        total = float(t[b, j].sum())
        raise ValueError(f"{name}[{b}, {j}] sums to {total:.6g}, not 1 (tolerance {SUM_TOL})")


def as_pair(q: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
    """Check one-position inputs `[V]` and return them in float64, first rounded to float32
    exactly as `verify` sees them."""
    q, p = torch.as_tensor(q), torch.as_tensor(p)
    if q.ndim != 1 or q.shape != p.shape:
        raise ValueError(f"q and p must both be [V], got {_desc(q)} and {_desc(p)}")
    return q.float().double(), p.float().double()


def _expect(name: str, t: Any, shape: tuple[int, ...], what: str, *, optional: bool = False,
            integer: bool = False) -> None:  # fmt: skip
    if optional and t is None:
        return
    if not isinstance(t, Tensor) or tuple(t.shape) != shape or (integer and not _is_int(t)):
        raise ValueError(f"{name} must be {what} = {list(shape)}, got {_desc(t)}")


def _is_int(t: Tensor) -> bool:
    return not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool


def _desc(t: Any) -> str:
    return f"{type(t).__name__} {list(t.shape)}" if isinstance(t, Tensor) else type(t).__name__
