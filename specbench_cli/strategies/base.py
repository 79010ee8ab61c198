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
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import Generator, Tensor

from . import coerce_params, spec_label

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
    def draw(cls, generator: Generator | None, B: int, k: int, V: int, mode: str = "race", *,
             device: torch.device | str | None = None) -> Noise:  # fmt: skip
        """Draw noise for one step; `generator=None` uses torch's global generator."""
        if mode not in NOISE_MODES:
            raise ValueError(f"noise mode must be one of {NOISE_MODES}, got {mode!r}")
        device = device if device is not None else getattr(generator, "device", "cpu")
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
    """Row `a` (first rejection) of each batch row: what a residual needs (bonus rows: unused)."""

    q: Tensor  # [B, V] target_probs at row a
    p: Tensor  # [B, V] draft_probs at row a (one-hot at x for deterministic drafts)
    x: Tensor  # [B] draft token at row a
    q_x: Tensor  # [B] q at x
    p_x: Tensor  # [B] p at x


def gather_rows(t: Tensor, index: Tensor) -> Tensor:
    """`t[b, index[b]]` for `t` `[B, R, V]` and `index` `[B]`: one `[B, V]` slice per row."""
    if t.shape[0] == 1:  # the engine's case: a view, no copy
        return t[0, int(index[0])][None]
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


def verify_with_noise(
    strategy: Strategy,
    target_probs: Tensor,  # [B, k+1, V] float32
    draft_probs: Tensor | None,  # [B, k, V] float32
    draft_tokens: Tensor,  # [B, k] long
    noise: Noise | None,
    target_logits: Tensor | None = None,  # [B, k+1, V]
    num_drafts: Tensor | None = None,  # [B] long
) -> VerifyResult:
    """Torch reference driver on checked inputs, the single function a kernel backend replaces:
    accept test on all positions, first rejection per row, the strategy's correction (row `a`)
    or bonus (row `n_r`), -1 padding."""
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


def _compiled(name: str) -> Callable[..., VerifyResult]:
    """A compiled backend of `specbench_cli.kernels`, imported (and built) on first use only."""

    def call(*args: Any) -> VerifyResult:
        from specbench_cli import kernels

        return getattr(kernels, f"{name}_backend")(*args)

    return call


# verify drivers by backend name; compiled ones fall back to `verify_with_noise` when unavailable
BACKENDS: dict[str, Callable[..., VerifyResult]] = {
    "torch": verify_with_noise,
    "cpu": _compiled("cpu"),
    "cuda": _compiled("cuda"),
    "auto": _compiled("auto"),
}


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
        self.params = coerce_params(self.name, self.PARAMS, params)
        self.check_params()

    def check_params(self) -> None:
        """Raise `ValueError` for out-of-range parameter values (subclasses override)."""

    def _require(self, ok: bool, message: str) -> None:
        if not ok:
            raise ValueError(f"strategy {self.name!r}: {message}")

    @property
    def label(self) -> str:
        """Stable key for result files, e.g. `sps` or `cactus:delta=0.5` (see `spec_label`)."""
        return spec_label(self.name, self.params)

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

    def verify(
        self,
        target_probs: Tensor,  # [B, k+1, V]
        draft_probs: Tensor | None,  # [B, k, V]
        draft_tokens: Tensor,  # [B, k]
        generator: Generator | None = None,
        *,
        target_logits: Tensor | None = None,  # [B, k+1, V]
        num_drafts: Tensor | None = None,  # [B]
        noise_mode: str = "race",
        validate: bool = True,
    ) -> VerifyResult:
        """Verify one step, drawing `Noise` from `generator` (None: torch's global generator).

        Probabilities are cast to float32 and must already sum to 1 within 1e-3 (softmax in
        float32, algorithms.md 0.3); they are not renormalized, so every backend sees the same
        bits. `target_logits` only matters to greedy. `validate=False` skips the value checks
        (shapes are always checked).
        """
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        q, p, x, logits, n_r = _checked(
            target_probs, draft_probs, draft_tokens, target_logits, num_drafts, validate
        )
        noise = (Noise.draw(generator, *x.shape, q.shape[-1], noise_mode, device=q.device)
                 if self.uses_noise else None)  # fmt: skip
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
    at = num_accepted.clamp(max=k - 1)[:, None]  # bonus rows point past the drafts; masked later
    x = step.draft_tokens.gather(1, at).squeeze(1)
    if step.draft_probs is None:
        p = torch.zeros_like(q_a).scatter_(1, x[:, None], 1.0)
    else:
        p = gather_rows(step.draft_probs, at.squeeze(1))
    return Row(q_a, p, x, step.q_x.gather(1, at).squeeze(1), step.p_x.gather(1, at).squeeze(1))


def _checked(target_probs: Tensor, draft_probs: Tensor | None, draft_tokens: Tensor,
             target_logits: Tensor | None, num_drafts: Tensor | None, validate: bool,
             ) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None, Tensor | None]:  # fmt: skip
    """Shape checks (always), value checks (when `validate`), float32/long casts (6.6, 0.5)."""
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
