"""Kernel-vs-reference agreement, shared by `specbench kernels check` and the tests.

Owns: the random and adversarial verification inputs (zeros in p where q is positive, one-hot
rows, p = q, all accepted, first-position rejection, empty residual, deterministic drafts, ragged
rows; V not a multiple of the kernels' 4096-token tile; B in {1, 64}; k in {1, 8}), the
comparison of a compiled backend with the reference (`reference_verify`) in probability and in
logits mode, and the classification of a disagreement as tolerated (the reference decision was
within rounding, as each rule judges its own test) or failed. Does not own the kernels
(`kernels.py`), the dispatch (`backends.py`), any rule (`strategies/`) or the timing
(`kernel_bench.py`), and names no rule.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from specbench_cli.backends import CompiledDriver
from specbench_cli.noise import Noise
from specbench_cli.philox import mulhi64
from specbench_cli.sampling import SamplingConfig, process_logits, to_probs
from specbench_cli.strategies import Strategy, parse_strategy_spec
from specbench_cli.strategies.base import REFERENCE, Row, VerifyResult
from specbench_cli.strategies.inputs import LogitsStep
from specbench_cli.strategies.weights import fixed_point

CASES = ("random", "zeros_in_p", "one_hot", "p_eq_q", "all_accepted", "first_rejection",
         "empty_residual", "deterministic", "ragged")  # fmt: skip
SHAPES = ((1, 1, 4097), (1, 8, 1000), (64, 1, 333), (64, 8, 4097))  # (B, k, V)
# logits mode: the engine's settings and the processing paths (top-p is processed by torch)
SAMPLINGS = (SamplingConfig(1.0), SamplingConfig(0.7), SamplingConfig(0.0),
             SamplingConfig(1.3, top_k=50), SamplingConfig(0.9, top_p=0.9))  # fmt: skip
ICDF_RTOL = 1e-6  # logits mode: |prefix boundary - target| <= this * total


@dataclass
class Inputs:
    target_probs: Tensor  # [B, k+1, V]
    draft_probs: Tensor | None  # [B, k, V]
    draft_tokens: Tensor  # [B, k]
    noise: Noise | None
    num_drafts: Tensor | None  # [B]
    target_logits: Tensor | None  # [B, k+1, V]

    def to(self, device: torch.device) -> Inputs:
        """The same inputs on `device`."""
        move = (lambda t: None if t is None else t.to(device))  # noqa: E731
        return Inputs(move(self.target_probs), move(self.draft_probs), move(self.draft_tokens),
                      None if self.noise is None else self.noise.to(device),
                      move(self.num_drafts), move(self.target_logits))  # fmt: skip

    def args(self) -> tuple:
        """Positional arguments of a driver, after the strategy (values not checked)."""
        return (self.target_probs, self.draft_probs, self.draft_tokens, self.noise,
                self.target_logits, self.num_drafts, False)  # fmt: skip


def _normalize(t: Tensor) -> Tensor:
    return t / t.sum(-1, keepdim=True)


def make_inputs(case: str, B: int, k: int, V: int, g: torch.Generator, strategy: Strategy,
                scale: float = 3.0, draft_noise: float = 0.7) -> Inputs:
    """One batch of a check case. The noise is `Noise(seeds, counters)` with seeds from `g`:
    cases that need a decision force it through the inputs (q = 0 at the first draft rejects it;
    p = q with the drafts at the argmax accepts them; q = p without the drafted tokens' mass
    rejects with an empty residual)."""
    q = torch.softmax(torch.randn(B, k + 1, V, generator=g) * scale, -1)
    p = torch.softmax(q[:, :k].log() + draft_noise * torch.randn(B, k, V, generator=g), -1)
    if case == "zeros_in_p":  # p = 0 on about half the tokens, where q > 0
        keep = torch.rand(B, k, V, generator=g) < 0.5
        keep.scatter_(-1, torch.randint(0, V, (B, k, 1), generator=g), True)
        p = _normalize(p * keep)
    elif case == "one_hot":  # one-hot target rows and one-hot draft rows, half of each
        hot = torch.nn.functional.one_hot(torch.randint(0, V, (B, k + 1), generator=g), V).float()
        pick = torch.rand(B, k + 1, 1, generator=g) < 0.5
        q = torch.where(pick, hot, q)
        hot_p = torch.nn.functional.one_hot(torch.randint(0, V, (B, k), generator=g), V).float()
        p = torch.where(torch.rand(B, k, 1, generator=g) < 0.5, hot_p, p)
    elif case in ("p_eq_q", "all_accepted", "empty_residual"):
        p = q[:, :k].clone()
    flat = p.reshape(-1, V)
    x = torch.multinomial(flat, 1, generator=g).reshape(B, k) if B * k else p.new_zeros(B, k)
    x = x.long()
    if case == "all_accepted":
        x = q[:, :k].argmax(-1)
    elif case == "first_rejection" and k:
        q[:, 0].scatter_(-1, x[:, :1], 0.0)
        q[:, 0] = _normalize(q[:, 0])
    elif case == "empty_residual" and k:
        q[:, :k].scatter_(-1, x[..., None], 0.0)  # q <= p everywhere: rows no longer sum to 1
    noise = None
    if strategy.uses_noise:
        noise = Noise(torch.randint(-2**63, 2**63 - 1, (B,), generator=g),
                      torch.randint(0, 2**40, (B,), generator=g))  # fmt: skip
    num_drafts = torch.randint(0, k + 1, (B,), generator=g) if case == "ragged" else None
    draft_probs = None if case == "deterministic" else p.contiguous()
    logits = q.log() if strategy.USES_LOGITS else None
    return Inputs(q.contiguous(), draft_probs, x, noise, num_drafts, logits)


@dataclass
class Agreement:
    rows: int = 0
    token_match: int = 0
    accept_match: int = 0
    tolerated: int = 0
    failed: int = 0

    @property
    def token_rate(self) -> float:
        return self.token_match / max(self.rows, 1)

    @property
    def accept_rate(self) -> float:
        return self.accept_match / max(self.rows, 1)

    def add(self, ref: VerifyResult, ker: VerifyResult, is_tolerated: Callable[..., bool]) -> None:
        """Add one batch: rows, matches, and each disagreement judged by `is_tolerated(b, ref_a,
        ker_a, ref_token, ker_token)`."""
        ref_t, ref_a, ker_t, ker_a = (t.cpu() for t in (ref.tokens, ref.num_accepted,
                                                         ker.tokens, ker.num_accepted))
        same_tokens = (ref_t == ker_t).all(1)
        self.rows += ref_t.shape[0]
        self.token_match += int(same_tokens.sum())
        self.accept_match += int((ref_a == ker_a).sum())
        for b in torch.nonzero(~same_tokens).flatten().tolist():
            ra, ka = int(ref_a[b]), int(ker_a[b])
            if ka >= 0 and is_tolerated(b, ra, ka, int(ref_t[b, ra]), int(ker_t[b, ka])):
                self.tolerated += 1
            else:
                self.failed += 1


def run_backend(strategy: Strategy, inp: Inputs, backend: str) -> VerifyResult:
    """The step on `backend` ("torch" = the reference) with the same inputs, unchecked."""
    if backend == "torch":
        return REFERENCE(strategy, *inp.args())
    return CompiledDriver(backend)(strategy, *inp.to(torch.device(backend)).args())


def compare(strategy: Strategy, inp: Inputs, backend: str, into: Agreement) -> None:
    """Add one batch's row-level agreement between `backend` and the reference to `into`."""
    compare_results(strategy, inp, run_backend(strategy, inp, "torch"),
                    run_backend(strategy, inp, backend), into)  # fmt: skip


def compare_results(strategy: Strategy, inp: Inputs, ref: VerifyResult, ker: VerifyResult,
                    into: Agreement) -> None:  # fmt: skip
    """Both sides implement the same integer noise and float decisions, so a disagreement is
    tolerated only where the rule's own accept test was within rounding (typical acceptance's
    threshold, the one float sum whose order differs)."""
    def accept_rounding(b: int, ref_a: int, ker_a: int, ref_tok: int, ker_tok: int) -> bool:
        return ref_a != ker_a and _accept_within_rounding(strategy, inp, b, min(ref_a, ker_a))

    into.add(ref, ker, accept_rounding)


def _accept_within_rounding(strategy: Strategy, inp: Inputs, b: int, j: int) -> bool:
    x = int(inp.draft_tokens[b, j])
    p_x = 1.0 if inp.draft_probs is None else float(inp.draft_probs[b, j, x])
    u = float(inp.noise.accept_uniforms(j + 1)[b, j]) if inp.noise is not None else 0.0
    return strategy.decided_by_rounding(inp.target_probs[b, j], x, p_x, u)


def agreement(backend: str, spec: str, rows: int = 1000, seed: int = 0) -> Agreement:
    """Agreement of `backend` with the reference over every case and shape for one spec."""
    strategy = parse_strategy_spec(spec)
    g = torch.Generator().manual_seed(seed)
    result = Agreement()
    per_case = max(1, math.ceil(rows / len(CASES)))
    for case in CASES:
        for B, k, V in SHAPES:
            calls = min(4, per_case) if B == 1 else max(1, math.ceil(per_case / (2 * B)))
            for _ in range(calls):
                compare(strategy, make_inputs(case, B, k, V, g, strategy), backend, result)
    return result


def logits_agreement(backend: str, spec: str, rows: int = 1000, seed: int = 0) -> Agreement:
    """Agreement of `verify_logits` on `backend` with the reference path (`sampling.py`, then the
    reference) for every setting in `SAMPLINGS`, with drafts close to the target, alternately
    deterministic and ragged. The kernel's softmax differs from torch's in the last bits, so a
    disagreement is tolerated where the reference's accept test or its sample was within
    rounding."""
    strategy, kernel = parse_strategy_spec(spec), parse_strategy_spec(spec, backend=backend)
    g = torch.Generator().manual_seed(seed)
    dev = torch.device(backend)
    result = Agreement()
    for cfg in SAMPLINGS:
        for B, k, V in SHAPES:
            calls = max(2, math.ceil(rows / (len(SAMPLINGS) * len(SHAPES) * B)))
            for call in range(calls):
                inp, logits = _logits_inputs(B, k, V, cfg, g, call, strategy)
                ref = REFERENCE(strategy, *inp.args())
                ker = kernel.verify_logits(
                    logits.to(dev), _to(inp.draft_probs, dev), inp.draft_tokens.to(dev), cfg,
                    num_drafts=_to(inp.num_drafts, dev), validate=False,
                    noise=None if inp.noise is None else inp.noise.to(dev))  # fmt: skip
                result.add(ref, ker, functools.partial(_logits_tolerated, strategy, inp))
    return result


def _logits_inputs(B: int, k: int, V: int, cfg: SamplingConfig, g: torch.Generator, call: int,
                   strategy: Strategy) -> tuple[Inputs, Tensor]:  # fmt: skip
    """(the reference path's inputs, the raw target logits) of one logits-mode check."""
    logits = torch.randn(B, k + 1, V, generator=g) * 3
    draft = to_probs(process_logits(logits[:, :k] + 0.7 * torch.randn(B, k, V, generator=g),
                                    cfg), cfg)  # fmt: skip
    x = torch.multinomial(draft.reshape(-1, V), 1, generator=g).reshape(B, k)
    noise = None
    if strategy.uses_noise:
        noise = Noise(torch.randint(-2**63, 2**63 - 1, (B,), generator=g),
                      torch.randint(0, 2**40, (B,), generator=g))  # fmt: skip
    n_r = torch.randint(0, k + 1, (B,), generator=g) if call % 3 == 2 else None
    step = LogitsStep(logits, None if call % 2 else draft, None, x, n_r, cfg)
    q, p, processed = step.processed()
    return Inputs(q, p, x, noise, n_r, processed), logits


def _to(t: Tensor | None, device: torch.device) -> Tensor | None:
    return None if t is None else t.to(device)


def _logits_tolerated(strategy: Strategy, inp: Inputs, b: int, ref_a: int, ker_a: int,
                      ref_tok: int, ker_tok: int) -> bool:  # fmt: skip
    if ref_a != ker_a:
        return _accept_within_rounding(strategy, inp, b, min(ref_a, ker_a))
    if not strategy.sampled_final(ref_a >= _n(inp, b)):
        return False  # argmax outputs
    weights = fixed_point(_final_weights(strategy, inp, b, ref_a)[None])[0]
    if int(weights.sum()) == 0:
        weights = fixed_point(inp.target_probs[b, ref_a][None])[0]
    cum = weights.cumsum(0)
    target = int(mulhi64(inp.noise.final_draws()[b:b + 1], cum[-1:])[0])
    lo, hi = sorted((ref_tok, ker_tok))
    return bool(((cum[lo:hi + 1] - target).abs() <= ICDF_RTOL * int(cum[-1])).any())


def _n(inp: Inputs, b: int) -> int:
    k = inp.draft_tokens.shape[1]
    return k if inp.num_drafts is None else int(inp.num_drafts[b])


def _final_weights(strategy: Strategy, inp: Inputs, b: int, a: int) -> Tensor:
    """Reference weights of row b's final token: the residual at row a, or q at the bonus row."""
    q_a = inp.target_probs[b, a]
    if a >= _n(inp, b):
        return q_a
    x = inp.draft_tokens[b, a]
    if inp.draft_probs is None:
        p_a = torch.zeros_like(q_a).index_fill_(0, x[None], 1.0)
    else:
        p_a = inp.draft_probs[b, a]
    row = Row(q_a[None].clone(), p_a[None].clone(), x[None], q_a[x][None], p_a[x][None])
    return strategy.residual(row)[0]
