"""The decoding loop: one loop for the autoregressive baseline and every strategy (batch size 1).

Invariant between steps (docs/engine.md): the committed sequence has L tokens, the target KV
cache holds the first L-1, and the last one is pending. A step drafts n_r <= k tokens, runs one
target forward over [pending, drafts], verifies with the strategy, commits the a accepted drafts
plus one emitted token (correction or bonus), and crops the target cache to L + a entries. With no
drafter (or an empty draft) a step is an ordinary decoding step: that is the baseline.

The engine knows models, a drafter and a strategy through their protocols and yields one
`StepRecord` per target forward pass; it never prints or aggregates. An observer (the
divergence audit) may look at each step's distributions after the step's clock stopped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

from specbench_cli.kvcache import cache_argument, crop_to
from specbench_cli.sampling import SamplingConfig, process_logits, sample, to_probs
from specbench_cli.timing import device_sync

if TYPE_CHECKING:
    from specbench_cli.drafters import Drafter
    from specbench_cli.strategies import Strategy


@dataclass
class StepRecord:
    drafted: int  # n_r, tokens the drafter proposed (0 for prefill and baseline steps)
    accepted: int  # drafts kept
    tokens: list[int]  # ids committed by this step
    step_s: float  # wall time of the whole step (observers excluded)
    target_s: float  # target forward pass
    draft_s: float  # inside the drafter (its own forward passes included)
    draft_forward_s: float  # the drafter's model forward passes alone
    verify_s: float  # logit processing + acceptance rule
    prefill: bool = False
    kl: float = 0.0  # divergence audit: sum over emitted drafted positions of KL(pi || q)
    tv: float = 0.0
    audited: int = 0  # drafted positions the audit covered

    @property
    def overhead_s(self) -> float:
        """The engine's own time in this step: everything outside model forward passes."""
        return self.step_s - self.target_s - self.draft_forward_s


class StepObserver(Protocol):
    def __call__(self, record: StepRecord, target_probs: torch.Tensor,
                 draft_probs: torch.Tensor | None, draft_tokens: list[int]) -> None:  # fmt: skip
        """Look at a verified step: `target_probs` `[n+1, V]`, `draft_probs` `[n, V]` or None."""


class Engine:
    """Speculative decoding for one sequence at a time.

    Args:
        model: target causal LM (transformers), eval mode.
        vocab_size: logit width shared with the drafter (logits are cut to it).
        sampling: temperature / top-k / top-p, applied identically to target and draft.
        strategy: acceptance rule, or None for the baseline.
        drafter: the drafter, or None for the baseline.
        k: tokens drafted per step.
        eos_ids: generation stops after any of these is committed.
        observer: called after each verified step, outside its timing (the divergence audit).
    """

    def __init__(
        self,
        model: Any,
        vocab_size: int,
        sampling: SamplingConfig,
        strategy: Strategy | None = None,
        drafter: Drafter | None = None,
        k: int = 4,
        eos_ids: tuple[int, ...] = (),
        observer: StepObserver | None = None,
    ):
        self.model = model
        self.device = model.get_input_embeddings().weight.device
        self.vocab_size = vocab_size
        self.sampling = sampling
        self.strategy = strategy
        self.drafter = drafter
        self.k = k if drafter is not None else 0
        self.eos_ids = frozenset(eos_ids)
        self.observer = observer
        self.sync = device_sync(self.device)
        self._cache_arg = cache_argument(model)

    def _forward(self, ids: list[int], cache: Any, keep_last: bool) -> torch.Tensor:
        inp = torch.tensor([ids], device=self.device)
        kwargs = {"logits_to_keep": 1} if keep_last else {}
        out = self.model(input_ids=inp, use_cache=True, **{self._cache_arg: cache}, **kwargs)
        return out.logits[0, :, : self.vocab_size]  # [n, V]

    def _emit_plain(self, logits: torch.Tensor, gen: torch.Generator) -> int:
        processed = process_logits(logits, self.sampling)
        if self.sampling.greedy:
            return int(processed.argmax())
        return int(sample(to_probs(processed, self.sampling)[None], gen))

    def _cut_draft(self, tokens: list[int], budget: int) -> list[int]:
        """Drafts worth verifying: up to k, stopping after an EOS and leaving room in the token
        budget for the step's emitted token."""
        tokens = tokens[: min(self.k, max(budget - 1, 0))]
        for i, tok in enumerate(tokens):
            if tok in self.eos_ids:
                return tokens[: i + 1]
        return tokens

    def _commit(self, drafts: list[int], accepted: int, emitted: int) -> list[int]:
        """What a step commits: the accepted drafts and the emitted token, except that nothing
        follows an accepted EOS. Drafts were cut to the budget and at EOS (`_cut_draft`), so
        this never exceeds the budget and holds at most one EOS, last."""
        new = drafts[:accepted]
        if not new or new[-1] not in self.eos_ids:
            new.append(emitted)
        return new

    @torch.inference_mode()
    def generate(
        self, prompt_ids: list[int], max_new_tokens: int, seed: int
    ) -> Iterator[StepRecord]:
        from transformers import DynamicCache

        gen = torch.Generator(device=self.device).manual_seed(seed)
        if self.drafter is not None:
            self.drafter.reset(seed + 1)
        cache = DynamicCache()

        # prefill: the cache then holds the whole prompt and the first new token is pending
        self.sync()
        t0 = time.perf_counter()
        logits = self._forward(prompt_ids, cache, keep_last=True)
        self.sync()
        t1 = time.perf_counter()
        new = self._commit([], 0, self._emit_plain(logits[-1], gen))
        t2 = time.perf_counter()
        yield StepRecord(0, 0, new, t2 - t0, t1 - t0, 0.0, 0.0, t2 - t1, prefill=True)
        context = list(prompt_ids) + new
        produced = len(new)

        while produced < max_new_tokens and context[-1] not in self.eos_ids:
            budget = max_new_tokens - produced
            t0 = time.perf_counter()
            drafts: list[int] = []
            draft_probs = None
            draft_forward_s = 0.0
            if self.drafter is not None:
                draft = self.drafter.propose(context, min(self.k, budget - 1))
                drafts = self._cut_draft(draft.tokens, budget)
                if draft.probs is not None and drafts:
                    draft_probs = draft.probs[: len(drafts)]
                draft_forward_s = draft.forward_s
            t1 = time.perf_counter()
            cache_len = len(context) - 1
            logits = self._forward([context[-1]] + drafts, cache, keep_last=not drafts)
            self.sync()
            t2 = time.perf_counter()
            if drafts:
                accepted, emitted = self._verify(logits, drafts, draft_probs, gen)
            else:
                accepted, emitted = 0, self._emit_plain(logits[-1], gen)
            t3 = time.perf_counter()
            new = self._commit(drafts, accepted, emitted)
            # keep pending + accepted drafts; the emitted token becomes the new pending one
            crop_to(cache, cache_len + 1 + accepted)
            context.extend(new)
            produced += len(new)
            if self.drafter is not None:
                self.drafter.observe(accepted)
            t4 = time.perf_counter()
            record = StepRecord(len(drafts), accepted, new, t4 - t0, t2 - t1, t1 - t0,
                                draft_forward_s, t3 - t2)
            if self.observer is not None and drafts:
                p = None if self.sampling.greedy else draft_probs
                self.observer(record, self._target_probs(logits), p, drafts)  # clock stopped
            yield record

    def _verify(self, logits: torch.Tensor, drafts: list[int], draft_probs: torch.Tensor | None,
                gen: torch.Generator) -> tuple[int, int]:  # fmt: skip
        """(accepted, emitted) from the raw logits `[n_r+1, V]`: the strategy's backend applies the
        sampling settings itself where it can (`Strategy.verify_logits`)."""
        x = torch.tensor([drafts], device=logits.device)
        p = None if self.sampling.greedy or draft_probs is None else draft_probs[None]
        # our own model's logits and drafter's laws: value checks would cost more than the kernel
        result = self.strategy.verify_logits(logits[None], p, x, self.sampling, gen,
                                             validate=False)  # fmt: skip
        accepted = result.num_accepted.item()
        return accepted, result.tokens.tolist()[0][accepted]  # one op each: no tensor indexing

    def _target_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """The target laws `[n_r+1, V]` of a verified step, for the observer."""
        return to_probs(process_logits(logits, self.sampling), self.sampling)
