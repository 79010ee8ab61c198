"""Checks of a verification step's inputs, the contract every backend relies on.

Shapes are always checked here, in Python. Values (finite, nonnegative, live rows summing to 1
within `SUM_TOL`, draft ids in range, `num_drafts` within [0, k]) are checked only when asked:
by `check_values` before the reference runs, and by a compiled kernel in its first pass over the
rows, which reports a failure so that `check_values` can raise the same `ValueError`. Inputs come
back cast to float32 / int64: probabilities are not renormalized, so every backend sees the same
bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from specbench_cli.sampling import SamplingConfig, process_logits, to_probs

SUM_TOL = 1e-3  # probability rows must sum to 1 within this


def checked(target_probs: Tensor, draft_probs: Tensor | None, draft_tokens: Tensor,
            target_logits: Tensor | None, num_drafts: Tensor | None,
            ) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None, Tensor | None]:  # fmt: skip
    """`(target_probs, draft_probs, draft_tokens, target_logits, num_drafts)`, shape-checked and
    cast; `ValueError` on a shape a backend cannot take (values: `check_values`)."""
    B, k, V = _step_shape(draft_tokens, target_probs)
    _expect("target_probs", target_probs, (B, k + 1, max(V, 1)), "[B, k+1, V], bonus row last")
    _expect("draft_probs", draft_probs, (B, k, V), "None or [B, k, V]", optional=True)
    _expect("target_logits", target_logits, (B, k + 1, V), "None or [B, k+1, V]", optional=True)
    _expect("num_drafts", num_drafts, (B,), "None or an integer [B]", optional=True, integer=True)
    return (_float(target_probs), _float(draft_probs), _long(draft_tokens),
            _float(target_logits), _long(num_drafts))  # fmt: skip


def _step_shape(draft_tokens: Any, target: Any) -> tuple[int, int, int]:
    """`(B, k, V)` from the draft ids `[B, k]` and the last dimension of the target rows."""
    if not isinstance(draft_tokens, Tensor) or draft_tokens.ndim != 2 or not _is_int(draft_tokens):
        raise ValueError(
            f"draft_tokens must be an integer [B, k] tensor, got {_desc(draft_tokens)}"
        )
    V = target.shape[-1] if isinstance(target, Tensor) and target.ndim else 0
    return (*draft_tokens.shape, V)


def _float(t: Tensor | None) -> Tensor | None:
    # no call at all when the dtype is right: even a no-op cast costs a dispatch, and the engine's
    # verify step runs right after a forward pass, with cold caches
    return t if t is None or t.dtype == torch.float32 else t.float()


def _long(t: Tensor | None) -> Tensor | None:
    return t if t is None or t.dtype == torch.int64 else t.long()


@dataclass(frozen=True)
class LogitsStep:
    """Checked inputs of a step given as raw logits plus the sampling settings."""

    target_logits: Tensor  # [B, k+1, V] float32, raw
    draft_probs: Tensor | None  # [B, k, V] float32, or None (see draft_logits)
    draft_logits: Tensor | None  # [B, k, V] float32 raw; None: draft_probs (None: one-hot)
    draft_tokens: Tensor  # [B, k] long
    num_drafts: Tensor | None  # [B] long
    sampling: SamplingConfig

    def processed(self) -> tuple[Tensor, Tensor | None, Tensor]:
        """`(target_probs, draft_probs, processed target logits)` by `specbench_cli.sampling`,
        exactly as the engine turns logits into laws."""
        target = process_logits(self.target_logits, self.sampling)
        draft = self.draft_probs
        if self.draft_logits is not None:
            draft = to_probs(process_logits(self.draft_logits, self.sampling), self.sampling)
        return to_probs(target, self.sampling), draft, target


def checked_logits(target_logits: Tensor, draft_probs: Tensor | None, draft_logits: Tensor | None,
                   draft_tokens: Tensor, num_drafts: Tensor | None,
                   sampling: SamplingConfig) -> LogitsStep:  # fmt: skip
    """The inputs of a step given as logits, shape-checked and cast (`ValueError` otherwise)."""
    if not isinstance(sampling, SamplingConfig):
        raise ValueError(f"sampling must be a SamplingConfig, got {type(sampling).__name__}")
    if draft_probs is not None and draft_logits is not None:
        raise ValueError("give draft_probs or draft_logits, not both")
    B, k, V = _step_shape(draft_tokens, target_logits)
    _expect("target_logits", target_logits, (B, k + 1, max(V, 1)), "[B, k+1, V], bonus row last")
    _expect("draft_probs", draft_probs, (B, k, V), "None or [B, k, V]", optional=True)
    _expect("draft_logits", draft_logits, (B, k, V), "None or [B, k, V]", optional=True)
    _expect("num_drafts", num_drafts, (B,), "None or an integer [B]", optional=True, integer=True)
    return LogitsStep(_float(target_logits), _float(draft_probs), _float(draft_logits),
                      _long(draft_tokens), _long(num_drafts), sampling)  # fmt: skip


def check_values(target_probs: Tensor, draft_probs: Tensor | None, draft_tokens: Tensor,
                 target_logits: Tensor | None, num_drafts: Tensor | None) -> None:  # fmt: skip
    """`ValueError` naming the first bad value, in a fixed order: `num_drafts`, then
    `target_probs`, `draft_probs`, the draft ids and `target_logits`."""
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
