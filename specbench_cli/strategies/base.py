"""The chain-rule protocol: what a single-draft acceptance strategy is and how one step runs.

Owns the `Strategy` base class (name, parameters, lossless flag, a rule's accept test and
residual, its exact one-step law, the description of its compiled kernel), the per-step values a
rule reads (`Step`, `Row`), the result (`VerifyResult`) and `reference_verify`, the PyTorch
driver that defines the semantics (docs/strategies.md). A step enters either as probabilities
(`verify`, `verify_with_noise`) or as raw logits plus sampling settings (`verify_logits`, whose
reference processes them with `specbench_cli.sampling` first). Which backend runs a step is
decided by `specbench_cli.backends`, which hands each strategy its driver; this module imports no
backend.

Shapes: `B` rows, `k` draft positions, `V` vocabulary. `target_probs` is `q`, `draft_probs` is
`p` in the docs; `draft_probs=None` means a deterministic drafter (one-hot `p`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
from torch import Generator, Tensor

from specbench_cli.noise import Noise
from specbench_cli.sampling import SamplingConfig

from .inputs import LogitsStep, check_values, checked, checked_logits
from .kernel_desc import KernelDesc  # noqa: F401  (re-exported: the rules import it from here)
from .rows import verify_rows_via_tensors
from .rule import Rule
from .weights import gather_rows, sample_from_weights

ACCEPT_RTOL = 1e-6  # |u s - t| within this * max(t, s): an accept test decided by rounding


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of one verification step."""

    tokens: Tensor  # [B, k+1] long: accepted drafts, one emitted token, then -1 padding
    num_accepted: Tensor  # [B] long: accepted drafts; the row emits num_accepted + 1 tokens


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
    final: Tensor | None  # [B] 64-bit draws that pick the emitted token (None: no noise)
    num_drafts: Tensor | None = None  # [B] real drafts per row (None: all k)


@dataclass(frozen=True)
class Row:
    """Row `a` (first rejection) of each batch row: what a residual needs (bonus rows: unused)."""

    q: Tensor  # [B, V] target_probs at row a
    p: Tensor  # [B, V] draft_probs at row a (one-hot at x for deterministic drafts)
    x: Tensor  # [B] draft token at row a
    q_x: Tensor  # [B] q at x
    p_x: Tensor  # [B] p at x


class Driver(Protocol):
    """Runs one shape-checked step for a strategy: the reference below or a compiled backend.
    With `validate`, values are checked too (`ValueError` from `inputs.check_values`)."""

    name: str

    def __call__(self, strategy: Strategy, target_probs: Tensor, draft_probs: Tensor | None,
                 draft_tokens: Tensor, noise: Noise | None, target_logits: Tensor | None,
                 num_drafts: Tensor | None, validate: bool) -> VerifyResult: ...  # fmt: skip

    def from_logits(self, strategy: Strategy, step: LogitsStep, noise: Noise | None,
                    validate: bool) -> VerifyResult: ...  # fmt: skip

    def rows(self, strategy: Strategy, target_logits: Tensor, draft_probs: Tensor | None,
             drafts: list[list[int]], sampling: SamplingConfig, seeds: list[int],
             counters: list[int]) -> tuple[list[int], list[int]]: ...  # fmt: skip


def reference_verify(
    strategy: Strategy,
    target_probs: Tensor,  # [B, k+1, V] float32
    draft_probs: Tensor | None,  # [B, k, V] float32
    draft_tokens: Tensor,  # [B, k] long
    noise: Noise | None,
    target_logits: Tensor | None = None,  # [B, k+1, V]
    num_drafts: Tensor | None = None,  # [B] long
) -> VerifyResult:
    """The PyTorch reference on checked inputs, the function a compiled backend replaces: accept
    test on all positions, first rejection per row, the strategy's correction (row `a`) or bonus
    (row `n_r`), -1 padding."""
    B, k = draft_tokens.shape
    live = None
    if num_drafts is not None:
        live = torch.arange(k, device=draft_tokens.device) < num_drafts[:, None]  # [B, k]
        draft_tokens = draft_tokens.masked_fill(~live, 0)  # ids past n_r may be padding
    index = draft_tokens.unsqueeze(-1)
    q_x = target_probs[:, :k].gather(-1, index).squeeze(-1)
    p_x = torch.ones_like(q_x) if draft_probs is None else draft_probs.gather(-1, index).squeeze(-1)
    u_acc, final = (None, None) if noise is None else noise.draws(k)
    step = Step(target_probs, draft_probs, draft_tokens, target_logits, q_x, p_x, u_acc, final,
                num_drafts)
    if k:
        accepted = strategy.accept(step)
    else:
        accepted = torch.zeros(B, 0, dtype=torch.bool, device=draft_tokens.device)
    if live is not None:
        accepted = accepted & live
    num_accepted = accepted.long().cumprod(1).sum(1)  # leading accepts = first rejection
    is_bonus = num_accepted == (k if num_drafts is None else num_drafts)
    emitted = strategy.emit(step, num_accepted, is_bonus)

    positions = torch.arange(k + 1, device=draft_tokens.device)
    tokens = torch.nn.functional.pad(draft_tokens, (0, 1), value=-1)
    tokens = torch.where(positions < num_accepted[:, None], tokens, -1)
    tokens.scatter_(1, num_accepted[:, None], emitted[:, None])
    return VerifyResult(tokens, num_accepted)


class _Reference:
    name = "torch"

    def __call__(self, strategy: Strategy, target_probs: Tensor, draft_probs: Tensor | None,
                 draft_tokens: Tensor, noise: Noise | None, target_logits: Tensor | None,
                 num_drafts: Tensor | None, validate: bool) -> VerifyResult:  # fmt: skip
        if validate:
            check_values(target_probs, draft_probs, draft_tokens, target_logits, num_drafts)
        return reference_verify(strategy, target_probs, draft_probs, draft_tokens, noise,
                                target_logits, num_drafts)  # fmt: skip

    def from_logits(self, strategy: Strategy, step: LogitsStep, noise: Noise | None,
                    validate: bool) -> VerifyResult:  # fmt: skip
        q, p, processed = step.processed()
        return self(strategy, q, p, step.draft_tokens, noise, processed, step.num_drafts,
                    validate)  # fmt: skip

    def rows(self, strategy: Strategy, target_logits: Tensor, draft_probs: Tensor | None,
             drafts: list[list[int]], sampling: SamplingConfig, seeds: list[int],
             counters: list[int]) -> tuple[list[int], list[int]]:  # fmt: skip
        return verify_rows_via_tensors(strategy, target_logits, draft_probs, drafts, sampling,
                                       seeds, counters)  # fmt: skip


REFERENCE: Driver = _Reference()


class Strategy(Rule):
    """Base class of the chain rules: subclasses set `name`, `PARAMS`, `LOSSLESS` and a one-line
    docstring (`Rule`).

    A rule of the form "accept iff `u * p(x) < t`" implements `accept_threshold` (t from the
    drafted token's `q(x)` and `p(x)`) and `residual` (correction weights at the rejected row);
    other rules override `accept` and `emit`. Every rule gives its exact one-step law
    (`output_distribution`) and acceptance probability. `kernel` describes the compiled kernel
    policy, when there is one. `EXAMPLES` are parameter settings the kernel checks exercise.
    """

    USES_LOGITS: ClassVar[bool] = False  # reads `target_logits` (greedy's argmax source)
    NEEDS_GREEDY_SAMPLING: ClassVar[bool] = False  # exact only against a temperature-0 target

    def __init__(self, *, driver: Driver | None = None, **params: Any) -> None:
        self.driver = driver or REFERENCE
        super().__init__(**params)

    @property
    def backend(self) -> str:
        """The backend this instance verifies on: torch, cpu, cuda or auto."""
        return self.driver.name

    # --- the rule ------------------------------------------------------------------------------

    def accept_threshold(self, q_x: Tensor, p_x: Tensor) -> Tensor:
        """`t` of the accept test `u * p(x) < t`, from the drafted tokens' q and p (any shape)."""
        raise NotImplementedError

    def accept(self, step: Step) -> Tensor:
        """Accept mask `[B, k]` for every drafted position (rows are cut at the first False)."""
        # strict: t = 0 always rejects, p = 0 accepts iff t > 0
        return step.u_acc * step.p_x < self.accept_threshold(step.q_x, step.p_x)

    def residual(self, row: Row) -> Tensor:
        """Unnormalized correction weights `[B, V]` at the rejected row (a new tensor: the
        driver overwrites bonus rows in place)."""
        raise NotImplementedError

    def emit(self, step: Step, num_accepted: Tensor, is_bonus: Tensor) -> Tensor:
        """Emitted token `[B]`: residual sample at row `a`, or a sample of `q` at the bonus row."""
        q_a = gather_rows(step.target_probs, num_accepted)  # [B, V]
        weights = q_a
        if not bool(is_bonus.all()):  # skip the residual when every row accepted everything
            weights = self.residual(rejected_row(step, num_accepted, q_a))
            if bool(is_bonus.any()):  # row copy, cheaper than a where over [B, V]
                weights[is_bonus] = q_a[is_bonus]
        return sample_from_weights(weights, step.final, fallback=q_a)

    def sampled_final(self, is_bonus: bool) -> bool:
        """Whether the emitted token of a correction (or bonus) row is a random sample of the
        residual (or of q), as opposed to an argmax."""
        return True

    def decided_by_rounding(self, q_row: Tensor, x: int, p_x: float, u: float) -> bool:
        """Whether the accept test of draft `x` against the float32 target row `q_row` `[V]`
        was within float rounding of its boundary (two exact implementations may disagree)."""
        q_x, s = q_row[x].float(), torch.tensor(p_x, dtype=torch.float32)
        t = float(self.accept_threshold(q_x, s))
        return abs(u * p_x - t) <= ACCEPT_RTOL * max(t, p_x)

    def output_distribution(self, q: Tensor, p: Tensor) -> Tensor:
        """Exact law `[V]` (float64) of the token emitted at one drafted position when x ~ p."""
        raise NotImplementedError

    def acceptance_probability(self, q: Tensor, p: Tensor) -> float:
        """Exact probability that the draft x ~ p is accepted at one position."""
        raise NotImplementedError

    # --- one step ------------------------------------------------------------------------------

    def verify(
        self,
        target_probs: Tensor,  # [B, k+1, V]
        draft_probs: Tensor | None,  # [B, k, V]
        draft_tokens: Tensor,  # [B, k]
        generator: Generator | None = None,
        *,
        target_logits: Tensor | None = None,  # [B, k+1, V]
        num_drafts: Tensor | None = None,  # [B]
        validate: bool = True,
    ) -> VerifyResult:
        """Verify one step with noise from one seed drawn from `generator` (None: torch's default
        generator of the tensors' device; see `Noise.draw`).

        Probabilities are cast to float32 and must already sum to 1 within 1e-3 (softmax in
        float32); they are not renormalized, so every backend sees the same bits.
        `target_logits` only matters to greedy. `validate=False` skips the value checks
        (shapes are always checked). A `ValueError` leaves `generator` as it was.
        """
        q, p, x, logits, n_r = checked(
            target_probs, draft_probs, draft_tokens, target_logits, num_drafts
        )
        return self._with_drawn_noise(
            generator, q, lambda noise: self.driver(self, q, p, x, noise, logits, n_r, validate),
            validate)  # fmt: skip

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
        """Verify one step with explicit noise, e.g. `Noise(seeds, counters)`: each row's own
        stream (None is allowed only when `uses_noise` is False)."""
        q, p, x, logits, n_r = checked(
            target_probs, draft_probs, draft_tokens, target_logits, num_drafts
        )
        self._check_noise(noise, x.shape[0])
        return self.driver(self, q, p, x, noise, logits, n_r, validate)

    def verify_logits(
        self,
        target_logits: Tensor,  # [B, k+1, V] raw
        draft_probs: Tensor | None,  # [B, k, V]
        draft_tokens: Tensor,  # [B, k]
        sampling: SamplingConfig,
        generator: Generator | None = None,
        *,
        draft_logits: Tensor | None = None,  # [B, k, V] raw, instead of draft_probs
        num_drafts: Tensor | None = None,  # [B]
        noise: Noise | None = None,
        validate: bool = True,
    ) -> VerifyResult:
        """Verify one step from raw target logits: `sampling`'s temperature, top-k, top-p and
        softmax turn them into `q` (and `draft_logits` into `p`) exactly as
        `specbench_cli.sampling` does, then the rule runs. Compiled backends do the processing
        inside the kernel where they can. Noise: `noise` if given, else one seed from
        `generator` (as `verify`)."""
        step = checked_logits(target_logits, draft_probs, draft_logits, draft_tokens, num_drafts,
                              sampling)  # fmt: skip
        if noise is not None:
            self._check_noise(noise, step.draft_tokens.shape[0])
            return self.driver.from_logits(self, step, noise, validate)
        return self._with_drawn_noise(
            generator, step.target_logits,
            lambda drawn: self.driver.from_logits(self, step, drawn, validate), validate)

    def verify_rows(
        self,
        target_logits: Tensor,  # [B, k+1, V] raw
        draft_probs: Tensor | None,  # [B, k, V]; None = one-hot drafts
        drafts: list[list[int]],  # each row's n_r <= k draft ids
        sampling: SamplingConfig,
        seeds: list[int],  # each row's noise: Noise(seeds, counters)
        counters: list[int],
    ) -> tuple[list[int], list[int]]:
        """The engine's entry (`rows.py`): per row, (accepted drafts, emitted token). The same
        tokens as `verify_logits` on the padded tensors with `validate=False`; a backend may
        take the lists straight to its kernel."""
        return self.driver.rows(self, target_logits, draft_probs, drafts, sampling, seeds,
                                counters)  # fmt: skip

    def _check_noise(self, noise: Noise | None, B: int) -> None:
        if self.uses_noise:
            if not isinstance(noise, Noise):
                raise ValueError("this strategy needs noise: pass a Noise (see Noise.draw)")
            noise.check(B)

    def _with_drawn_noise(self, generator: Generator | None, like: Tensor,
                          run: Any, validate: bool) -> VerifyResult:  # fmt: skip
        """`run(noise)` with noise drawn from `generator`; on a `ValueError` (bad input values)
        the generator is restored, so bad input consumes no randomness."""
        if not self.uses_noise:
            return run(None)
        generator = generator if generator is not None else default_generator(like.device)
        state = generator.get_state() if validate else None
        try:
            return run(Noise.draw(generator, like.shape[0], device=like.device))
        except ValueError:
            if state is not None:
                generator.set_state(state)
            raise


def default_generator(device: torch.device) -> Generator:
    """torch's default generator of `device` (what `generator=None` draws from)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.default_generators[index]
    return torch.default_generator


def rejected_row(step: Step, num_accepted: Tensor, q_a: Tensor) -> Row:
    """Row `a` of each batch row: `q_a` `[B, V]`, the draft law there (one-hot for deterministic
    drafts), the drafted token and its q and p (bonus rows point at row k-1; callers mask them)."""
    k = step.draft_tokens.shape[1]
    at = num_accepted.clamp(max=k - 1)[:, None]  # bonus rows point past the drafts; masked later
    x = step.draft_tokens.gather(1, at).squeeze(1)
    if step.draft_probs is None:
        p = torch.zeros_like(q_a).scatter_(1, x[:, None], 1.0)
    else:
        p = gather_rows(step.draft_probs, at.squeeze(1))
    return Row(q_a, p, x, step.q_x.gather(1, at).squeeze(1), step.p_x.gather(1, at).squeeze(1))
