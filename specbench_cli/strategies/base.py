"""The shared part of every single-draft acceptance strategy (algorithms.md sections 0 and 1).

Owns: the `Strategy` base class and its parameter handling, the verification inputs (`Step`,
`Row`) and outputs (`VerifyResult`), the randomness contract (`Noise`, 0.4), sampling from
unnormalized weights in `race` and `icdf` modes with the empty-residual fallback (0.5), input
validation (6.6), and `verify_with_noise`, the torch reference driver that a kernel backend may
replace. A rule itself is two vectorized pieces in its own module: an accept test over `[B, k]`
and the residual weights at the rejected row. Does not own the registry (`__init__.py`).

Shapes: `B` rows, `k` draft positions, `V` vocabulary. `target_probs` is `q`, `draft_probs` is
`p` in the algorithms document; `draft_probs=None` means a deterministic drafter (one-hot `p`).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor

NOISE_MODES = ("race", "icdf")
SUM_TOL = 1e-3  # probability rows must sum to 1 within this (0.5)


@dataclass(frozen=True)
class Noise:
    """Verification randomness, drawn outside the rule so that every backend sees the same numbers.

    Draw order from one generator (0.4): `u_acc` for all `k` positions first, then the final-token
    noise: `race` draws `e_fin = -log1p(-U)` over the vocabulary, `icdf` one uniform per row.
    """

    u_acc: Tensor  # [B, k] float32 uniforms in [0, 1) for the accept tests
    mode: str  # "race" or "icdf"
    e_fin: Tensor | None = None  # [B, V] float32 Exp(1) variates (race mode)
    u_fin: Tensor | None = None  # [B] float32 uniforms (icdf mode)

    @classmethod
    def draw(
        cls,
        generator: torch.Generator | None,
        B: int,
        k: int,
        V: int,
        mode: str = "race",
        *,
        device: torch.device | str | None = None,
    ) -> Noise:
        """Draw noise for one step; `generator=None` uses torch's global generator."""
        if mode not in NOISE_MODES:
            raise ValueError(f"noise mode must be one of {NOISE_MODES}, got {mode!r}")
        if device is None:
            device = generator.device if generator is not None else "cpu"
        u_acc = torch.rand(B, k, generator=generator, device=device)
        if mode == "race":
            e_fin = torch.rand(B, V, generator=generator, device=device)
            return cls(u_acc, mode, e_fin=e_fin.neg_().log1p_().neg_())
        return cls(u_acc, mode, u_fin=torch.rand(B, generator=generator, device=device))


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of one verification step."""

    tokens: Tensor  # [B, k+1] long: accepted drafts, one emitted token, then -1 padding
    num_accepted: Tensor  # [B] long: accepted drafts; the row emits num_accepted + 1 tokens
    num_zero_draft_prob: Tensor  # [B] long: drafted positions with p_j(x_j) = 0 (0.5 warning)


@dataclass(frozen=True)
class Step:
    """Checked inputs of one step plus the per-position values every accept test needs."""

    target_probs: Tensor  # [B, k+1, V] float32
    draft_probs: Tensor | None  # [B, k, V] float32; None = one-hot at draft_tokens
    draft_tokens: Tensor  # [B, k] long; ids past a ragged row's n_r are replaced by 0
    target_logits: Tensor | None  # [B, k+1, V] float32 (greedy takes its argmax here)
    q_x: Tensor  # [B, k] target probability of each draft token
    p_x: Tensor  # [B, k] draft probability of each draft token (1 for deterministic drafts)
    u_acc: Tensor | None  # [B, k] accept uniforms (None for rules that use no noise)


@dataclass(frozen=True)
class Row:
    """Row `a` (the first rejection) of every batch row, gathered: what a residual needs.

    Values on rows whose `a` is the bonus position are meaningless; the driver masks them.
    """

    q: Tensor  # [B, V] target_probs at row a
    p: Tensor  # [B, V] draft_probs at row a (one-hot at x for deterministic drafts)
    x: Tensor  # [B] draft token at row a


def gather_rows(t: Tensor, index: Tensor) -> Tensor:
    """`t[b, index[b]]` for `t` `[B, R, V]` and `index` `[B]`: one `[B, V]` slice per row."""
    rows = torch.arange(t.shape[0], device=t.device)
    if t.is_contiguous():  # flat index_select is about twice as fast as advanced indexing
        return t.view(-1, t.shape[-1]).index_select(0, rows * t.shape[1] + index)
    return t[rows, index]


def sample_from_weights(weights: Tensor, noise: Noise, fallback: Tensor | None = None) -> Tensor:
    """One token per row from nonnegative unnormalized `weights` `[B, V]` (0.4).

    race: argmax of `w / e` over `w > 0` (lowest id on ties). icdf: smallest `y` with
    `cumsum(w)[y] > u * sum(w)`, summed in float64. Rows whose weights are all zero take a sample
    from `fallback` `[B, V]` with the same noise (0.5); without a fallback their id is arbitrary.
    """
    token, empty = _sample(weights, noise)
    if fallback is not None and bool(empty.any()):
        token = torch.where(empty, _sample(fallback, noise)[0], token)
    return token


def _sample(weights: Tensor, noise: Noise) -> tuple[Tensor, Tensor]:
    if noise.mode == "race":
        # score = w / e where w > 0, else -1, in arithmetic form because torch.where over the
        # vocabulary is several times slower on CPU. With g = sign(w) in {0, 1}:
        # (g - 1) + (w / e) * g is exactly w / e (inf when e = 0) for w > 0 and -1 for w = 0;
        # the NaN of 0 / 0 is zeroed first, and the product by g is exact.
        g = weights.sign()
        ratio = (weights / noise.e_fin).nan_to_num_(nan=0.0, posinf=math.inf)
        score = torch.addcmul(g - 1.0, ratio, g)
        token = score.argmax(-1)
        return token, score.gather(1, token[:, None]).squeeze(1) < 0
    cum = weights.double().cumsum(-1)
    total = cum[:, -1]
    token = torch.searchsorted(cum, (noise.u_fin.double() * total)[:, None], right=True)
    return token.squeeze(1).clamp_max(weights.shape[-1] - 1), total <= 0


def verify_with_noise(
    strategy: Strategy,
    target_probs: Tensor,  # [B, k+1, V] float32
    draft_probs: Tensor | None,  # [B, k, V] float32
    draft_tokens: Tensor,  # [B, k] long
    noise: Noise | None,
    target_logits: Tensor | None = None,  # [B, k+1, V]
    num_drafts: Tensor | None = None,  # [B] long
) -> VerifyResult:
    """Torch reference driver on checked inputs: the single function a kernel backend replaces.

    Runs the strategy's accept test on all positions, takes the first rejection per row, lets the
    strategy emit the correction (row `a`) or bonus (row `n_r`), and pads with -1.
    """
    B, k = draft_tokens.shape
    live = None
    if num_drafts is not None:
        live = torch.arange(k, device=draft_tokens.device) < num_drafts[:, None]  # [B, k]
        draft_tokens = draft_tokens.masked_fill(~live, 0)  # ids past n_r may be padding
    index = draft_tokens.unsqueeze(-1)
    q_x = target_probs[:, :k].gather(-1, index).squeeze(-1)
    p_x = torch.ones_like(q_x) if draft_probs is None else draft_probs.gather(-1, index).squeeze(-1)
    u_acc = None if noise is None else noise.u_acc
    step = Step(target_probs, draft_probs, draft_tokens, target_logits, q_x, p_x, u_acc)
    if k:
        accepted = strategy.accept(step)
    else:
        accepted = torch.zeros(B, 0, dtype=torch.bool, device=draft_tokens.device)
    if live is not None:
        accepted = accepted & live
    num_accepted = accepted.long().cumprod(1).sum(1)  # leading accepts = first rejection
    is_bonus = num_accepted == (k if num_drafts is None else num_drafts)
    emitted = strategy.emit(step, num_accepted, is_bonus, noise)

    positions = torch.arange(k + 1, device=draft_tokens.device)
    tokens = torch.nn.functional.pad(draft_tokens, (0, 1), value=-1)
    tokens = torch.where(positions < num_accepted[:, None], tokens, -1)
    tokens.scatter_(1, num_accepted[:, None], emitted[:, None])
    zero_prob = p_x == 0
    if live is not None:
        zero_prob &= live
    return VerifyResult(tokens, num_accepted, zero_prob.sum(1))


BACKENDS: dict[str, Callable[..., VerifyResult]] = {"torch": verify_with_noise}


class Strategy:
    """Base class: subclasses set `name`, `PARAMS`, `LOSSLESS` and a one-line docstring.

    A subclass implements `accept` (vectorized test over `[B, k]`) and either `residual` (weights
    at the rejected row, sampled by the shared `emit`) or its own `emit`, plus the exact one-step
    law `output_distribution` and `acceptance_probability`.
    """

    name: ClassVar[str]
    PARAMS: ClassVar[dict[str, Any]] = {}
    LOSSLESS: ClassVar[bool] = False

    def __init__(self, *, backend: str = "torch", **params: Any) -> None:
        if backend not in BACKENDS:
            known = ", ".join(BACKENDS)
            raise ValueError(f"backend {backend!r} not available (available: {known})")
        self.backend = backend
        merged = {**self.PARAMS, **params}
        self.params = {key: self._coerce(key, value) for key, value in merged.items()}
        self.check_params()

    def _coerce(self, key: str, value: Any) -> Any:
        """Type-check one parameter against its default; strings (CLI values) are parsed."""
        if key not in self.PARAMS:
            hint = get_close_matches(key, self.PARAMS, n=1)
            known = ", ".join(self.PARAMS) or "none"
            did = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(
                f"strategy {self.name!r} has no parameter {key!r}{did} (parameters: {known})"
            )
        default = self.PARAMS[key]
        kind = type(default).__name__
        try:
            if isinstance(default, str):
                if not isinstance(value, str):
                    raise TypeError
                return value
            if isinstance(value, bool):
                raise TypeError
            if isinstance(default, int):
                return int(value) if isinstance(value, str) else _as_int(value)
            number = float(value) if isinstance(value, str) else _as_float(value)
            if not math.isfinite(number):
                raise TypeError
            return number
        except (TypeError, ValueError):
            raise ValueError(
                f"strategy {self.name!r}: parameter {key!r} expects a finite {kind}, got {value!r}"
            ) from None

    def check_params(self) -> None:
        """Raise `ValueError` for out-of-range parameter values (subclasses override)."""

    def _require(self, ok: bool, message: str) -> None:
        if not ok:
            raise ValueError(f"strategy {self.name!r}: {message}")

    @property
    def label(self) -> str:
        """Stable key for result files: `name` or `name:key=value,...` (sorted keys, all params)."""
        if not self.params:
            return self.name
        items = (f"{key}={_format(self.params[key])}" for key in sorted(self.params))
        return f"{self.name}:{','.join(items)}"

    @property
    def uses_noise(self) -> bool:
        """Whether verification consumes randomness (greedy and argmax-only rules do not)."""
        return True

    @property
    def lossless(self) -> bool:
        """Whether the emitted law equals the target for these parameter values."""
        return self.LOSSLESS

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"

    # -- the rule ---------------------------------------------------------------------------

    def accept(self, step: Step) -> Tensor:
        """Accept mask `[B, k]` for every drafted position (rows are cut at the first False)."""
        raise NotImplementedError

    def residual(self, row: Row) -> Tensor:
        """Unnormalized correction weights `[B, V]` at the rejected row (a new tensor: the
        driver overwrites bonus rows in place)."""
        raise NotImplementedError

    def emit(
        self, step: Step, num_accepted: Tensor, is_bonus: Tensor, noise: Noise | None
    ) -> Tensor:
        """Emitted token `[B]`: residual sample at row `a`, or a sample of `q` at the bonus row."""
        q_a = gather_rows(step.target_probs, num_accepted)  # [B, V]
        weights = q_a
        if not bool(is_bonus.all()):  # skip the residual when every row accepted everything
            weights = self.residual(_rejected_row(step, num_accepted, q_a))
            if bool(is_bonus.any()):  # row copy, cheaper than a where over [B, V]
                weights[is_bonus] = q_a[is_bonus]
        return sample_from_weights(weights, noise, fallback=q_a)

    def output_distribution(self, q: Tensor, p: Tensor) -> Tensor:
        """Exact law `[V]` (float64) of the token emitted at one drafted position when x ~ p."""
        raise NotImplementedError

    def acceptance_probability(self, q: Tensor, p: Tensor) -> float:
        """Exact probability that the draft x ~ p is accepted at one position."""
        raise NotImplementedError

    # -- public entry points ------------------------------------------------------------------

    def verify(
        self,
        target_probs: Tensor,  # [B, k+1, V]
        draft_probs: Tensor | None,  # [B, k, V]
        draft_tokens: Tensor,  # [B, k]
        generator: torch.Generator | None = None,
        *,
        target_logits: Tensor | None = None,  # [B, k+1, V]
        num_drafts: Tensor | None = None,  # [B]
        noise_mode: str = "race",
        validate: bool = True,
    ) -> VerifyResult:
        """Verify one step, drawing `Noise` from `generator` (None: torch's global generator)."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        q, p, x, logits, n_r = _checked(
            target_probs, draft_probs, draft_tokens, target_logits, num_drafts, validate
        )
        noise = None
        if self.uses_noise:
            noise = Noise.draw(generator, *x.shape, q.shape[-1], noise_mode, device=q.device)
        return BACKENDS[self.backend](self, q, p, x, noise, logits, n_r)

    def verify_with_noise(
        self,
        target_probs: Tensor,  # [B, k+1, V]
        draft_probs: Tensor | None,  # [B, k, V]
        draft_tokens: Tensor,  # [B, k]
        noise: Noise | None,
        *,
        target_logits: Tensor | None = None,  # [B, k+1, V]
        num_drafts: Tensor | None = None,  # [B]
        validate: bool = True,
    ) -> VerifyResult:
        """Verify one step with explicit noise (None is allowed only when `uses_noise` is False)."""
        q, p, x, logits, n_r = _checked(
            target_probs, draft_probs, draft_tokens, target_logits, num_drafts, validate
        )
        if self.uses_noise:
            _check_noise(noise, *x.shape, q.shape[-1])
        return BACKENDS[self.backend](self, q, p, x, noise, logits, n_r)


def _rejected_row(step: Step, num_accepted: Tensor, q_a: Tensor) -> Row:
    k = step.draft_tokens.shape[1]
    at = num_accepted.clamp(max=k - 1)  # bonus rows point past the drafts; masked later
    x = step.draft_tokens.gather(1, at[:, None]).squeeze(1)
    if step.draft_probs is None:
        p = torch.zeros_like(q_a).scatter_(1, x[:, None], 1.0)
    else:
        p = gather_rows(step.draft_probs, at)
    return Row(q_a, p, x)


def _checked(
    target_probs: Tensor,
    draft_probs: Tensor | None,
    draft_tokens: Tensor,
    target_logits: Tensor | None,
    num_drafts: Tensor | None,
    validate: bool,
) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None, Tensor | None]:
    """Shape checks (always), value checks (when `validate`), float32/long casts (6.6, 0.5)."""
    for name, t in (("target_probs", target_probs), ("draft_tokens", draft_tokens)):
        if not isinstance(t, Tensor):
            raise ValueError(f"{name} must be a tensor, got {type(t).__name__}")
    if draft_tokens.ndim != 2 or not _is_integer(draft_tokens):
        raise ValueError(
            f"draft_tokens must be an integer [B, k] tensor, got {_desc(draft_tokens)}"
        )
    B, k = draft_tokens.shape
    if target_probs.ndim != 3 or target_probs.shape[:2] != (B, k + 1) or target_probs.shape[2] < 1:
        raise ValueError(
            f"target_probs must be [B, k+1, V] = [{B}, {k + 1}, V] (the last row is the bonus "
            f"position), got {_desc(target_probs)}"
        )
    V = target_probs.shape[2]
    if draft_probs is not None and (
        not isinstance(draft_probs, Tensor) or tuple(draft_probs.shape) != (B, k, V)
    ):
        raise ValueError(
            f"draft_probs must be None or [B, k, V] = [{B}, {k}, {V}], got {_desc(draft_probs)}"
        )
    if target_logits is not None and (
        not isinstance(target_logits, Tensor) or target_logits.shape != target_probs.shape
    ):
        raise ValueError(
            f"target_logits must match target_probs {_desc(target_probs)}, "
            f"got {_desc(target_logits)}"
        )
    if num_drafts is not None and (
        not isinstance(num_drafts, Tensor)
        or tuple(num_drafts.shape) != (B,)
        or not _is_integer(num_drafts)
    ):
        raise ValueError(
            f"num_drafts must be None or an integer [B] = [{B}] tensor, got {_desc(num_drafts)}"
        )

    target_probs = target_probs.float()
    draft_probs = None if draft_probs is None else draft_probs.float()
    target_logits = None if target_logits is None else target_logits.float()
    draft_tokens = draft_tokens.long()
    num_drafts = None if num_drafts is None else num_drafts.long()
    if validate:
        live = None
        if num_drafts is not None and B:
            lo, hi = num_drafts.aminmax()
            if lo < 0 or hi > k:
                raise ValueError(f"num_drafts must lie in [0, k={k}], got [{int(lo)}, {int(hi)}]")
            live = torch.arange(k + 1, device=num_drafts.device) <= num_drafts[:, None]  # [B, k+1]
        _check_probs("target_probs", target_probs, live)
        if draft_probs is not None:
            _check_probs("draft_probs", draft_probs, None if live is None else live[:, 1:])
        if k * B:
            ids = draft_tokens if live is None else draft_tokens.masked_fill(~live[:, 1:], 0)
            lo, hi = ids.aminmax()
            if lo < 0 or hi >= V:
                raise ValueError(f"draft_tokens must lie in [0, V={V}), got [{int(lo)}, {int(hi)}]")
        if target_logits is not None and bool(torch.isnan(target_logits).any()):
            raise ValueError("target_logits contain NaN")
    return target_probs, draft_probs, draft_tokens, target_logits, num_drafts


def _check_probs(name: str, t: Tensor, live: Tensor | None) -> None:
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


def _check_noise(noise: Noise | None, B: int, k: int, V: int) -> None:
    if not isinstance(noise, Noise):
        raise ValueError("this strategy needs noise: pass a Noise (see Noise.draw)")
    if noise.mode not in NOISE_MODES:
        raise ValueError(f"noise mode must be one of {NOISE_MODES}, got {noise.mode!r}")
    final, want = (noise.e_fin, (B, V)) if noise.mode == "race" else (noise.u_fin, (B,))
    if tuple(noise.u_acc.shape) != (B, k) or final is None or tuple(final.shape) != want:
        raise ValueError(f"noise must hold u_acc [{B}, {k}] and {noise.mode} noise {list(want)}")


def as_pair(q: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
    """Check one-position inputs `[V]` and return them in float64, first rounded to float32
    exactly as `verify` sees them."""
    q, p = torch.as_tensor(q), torch.as_tensor(p)
    if q.ndim != 1 or q.shape != p.shape:
        raise ValueError(f"q and p must both be [V], got {_desc(q)} and {_desc(p)}")
    return q.float().double(), p.float().double()


def _is_integer(t: Tensor) -> bool:
    return not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool


def _as_int(value: Any) -> int:
    if not isinstance(value, numbers.Integral):
        raise TypeError
    return int(value)


def _as_float(value: Any) -> float:
    if not isinstance(value, numbers.Real):
        raise TypeError
    return float(value)


def _format(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _desc(t: Any) -> str:
    return f"{type(t).__name__} {list(t.shape)}" if isinstance(t, Tensor) else type(t).__name__
