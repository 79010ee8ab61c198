"""The decoding loop: one loop for the autoregressive baseline and every strategy (batch size 1).

Invariant between steps (algorithms.md 4.1): the committed sequence has L tokens, the target KV
cache holds the first L-1, and the last one is pending. A step drafts n_r <= k tokens, runs one
target forward over [pending, drafts], verifies with the strategy, commits the a accepted drafts
plus one emitted token (correction or bonus), and crops the target cache to L + a entries. With no
drafter (or an empty draft) a step is an ordinary decoding step: that is the baseline.

The engine knows models, a drafter and a strategy through their protocols and yields one
`StepRecord` per target forward pass; it never prints or aggregates.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from specbench_cli.kvcache import crop_to
from specbench_cli.sampling import SamplingConfig, process_logits, sample, to_probs


@dataclass
class StepRecord:
    drafted: int  # n_r, tokens the drafter proposed (0 for prefill and baseline steps)
    accepted: int  # drafts kept
    tokens: list[int]  # ids committed by this step (after EOS / budget truncation)
    step_s: float  # wall time of the whole step (the divergence audit excluded)
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


def device_sync(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


class Engine:
    """Speculative decoding for one sequence at a time.

    Args:
        model: target causal LM (transformers), eval mode.
        vocab_size: logit width shared with the drafter (logits are cut to it).
        sampling: temperature / top-k / top-p, applied identically to target and draft.
        strategy: acceptance rule (`specbench_cli.strategies`), or None for the baseline.
        drafter: a `Drafter`, or None for the baseline.
        k: tokens drafted per step.
        eos_ids: generation stops after any of these is committed.
        audit: compute KL/TV of the strategy's output law against q at drafted positions
            (untimed; adds O(V log V) work per position for Cactus).
        noise_mode: final-token noise of the verify step, race or icdf (algorithms.md 0.4).
    """

    def __init__(
        self,
        model: Any,
        vocab_size: int,
        sampling: SamplingConfig,
        strategy: Any = None,
        drafter: Any = None,
        k: int = 4,
        eos_ids: tuple[int, ...] = (),
        audit: bool = False,
        noise_mode: str = "race",
    ):
        self.model = model
        self.device = model.get_input_embeddings().weight.device
        self.vocab_size = vocab_size
        self.sampling = sampling
        self.strategy = strategy
        self.drafter = drafter
        self.k = k if drafter is not None else 0
        self.eos_ids = frozenset(eos_ids)
        self.audit = audit
        self.noise_mode = noise_mode
        self.sync = device_sync(self.device)

    def _forward(self, ids: list[int], cache: Any, keep_last: bool) -> torch.Tensor:
        inp = torch.tensor([ids], device=self.device)
        kwargs = {"logits_to_keep": 1} if keep_last else {}
        out = self.model(input_ids=inp, past_key_values=cache, use_cache=True, **kwargs)
        return out.logits[0, :, : self.vocab_size]  # [n, V]

    def _emit_plain(self, logits: torch.Tensor, gen: torch.Generator) -> int:
        processed = process_logits(logits, self.sampling)
        if self.sampling.greedy:
            return int(processed.argmax())
        return int(sample(to_probs(processed, self.sampling)[None], gen))

    def _cut_draft(self, tokens: list[int], budget: int) -> int:
        """Drafts stop after an EOS and leave room for the emitted token within the budget."""
        n = min(len(tokens), self.k, max(budget - 1, 0))
        for i in range(n):
            if tokens[i] in self.eos_ids:
                return i + 1
        return n

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
        first = self._emit_plain(logits[-1], gen)
        t2 = time.perf_counter()
        yield StepRecord(0, 0, [first], t2 - t0, t1 - t0, 0.0, 0.0, t2 - t1, prefill=True)
        context = list(prompt_ids) + [first]
        produced = 1
        if first in self.eos_ids:
            return

        while produced < max_new_tokens:
            budget = max_new_tokens - produced
            t0 = time.perf_counter()
            draft_tokens: list[int] = []
            draft_probs = None
            draft_forward_s = 0.0
            if self.drafter is not None:
                draft = self.drafter.propose(context, min(self.k, budget - 1))
                n_r = self._cut_draft(draft.tokens, budget)
                draft_tokens = draft.tokens[:n_r]
                if draft.probs is not None and n_r:
                    draft_probs = draft.probs[:n_r]
                draft_forward_s = draft.forward_s
            t1 = time.perf_counter()
            cache_len = len(context) - 1
            logits = self._forward([context[-1]] + draft_tokens, cache, keep_last=not draft_tokens)
            self.sync()
            t2 = time.perf_counter()
            if draft_tokens:
                accepted, emitted, q, p = self._verify(logits, draft_tokens, draft_probs, gen)
            else:
                accepted, emitted, q, p = 0, self._emit_plain(logits[-1], gen), None, None
            t3 = time.perf_counter()

            new = draft_tokens[:accepted] + [emitted]
            if accepted and draft_tokens[accepted - 1] in self.eos_ids:
                new = draft_tokens[:accepted]  # no bonus after an accepted EOS
            new = new[:budget]
            for i, tok in enumerate(new):
                if tok in self.eos_ids:
                    new = new[: i + 1]
                    break
            # keep pending + accepted drafts; the emitted token becomes the new pending one
            crop_to(cache, cache_len + 1 + accepted)
            context.extend(new)
            produced += len(new)
            if self.drafter is not None:
                self.drafter.observe(accepted)
            t4 = time.perf_counter()
            record = StepRecord(len(draft_tokens), accepted, new, t4 - t0, t2 - t1, t1 - t0,
                                draft_forward_s, t3 - t2)
            if self.audit and draft_tokens:
                self._audit(record, q, p, draft_tokens, accepted)  # after the clock stopped
            yield record
            if new[-1] in self.eos_ids:
                return

    def _verify(self, logits, draft_tokens, draft_probs, gen):
        processed = process_logits(logits, self.sampling)  # [n_r+1, V]
        target_probs = to_probs(processed, self.sampling)
        x = torch.tensor([draft_tokens], device=logits.device)
        p = None if self.sampling.greedy or draft_probs is None else draft_probs[None]
        # inputs come from our own softmax: value checks would cost more than the kernel
        result = self.strategy.verify(
            target_probs[None], p, x, generator=gen, target_logits=processed[None],
            noise_mode=self.noise_mode, validate=False,
        )
        accepted = int(result.num_accepted[0])
        return accepted, int(result.tokens[0, accepted]), target_probs, p

    def _audit(self, record: StepRecord, q, p, draft_tokens: list[int], accepted: int) -> None:
        """KL(pi || q), TV(pi, q) at the drafted positions whose token was emitted (j <= a)."""
        for j in range(min(accepted + 1, len(draft_tokens))):
            qj = q[j].double()
            if p is None:
                pj = torch.zeros_like(qj)
                pj[draft_tokens[j]] = 1.0
            else:
                pj = p[0, j].double()
            pi = self.strategy.output_distribution(qj, pj).double()
            mass = pi > 0
            if bool((qj[mass] <= 0).any()):
                kl = math.inf
            else:
                kl = float((pi[mass] * (pi[mass] / qj[mass]).log()).sum().clamp_min(0.0))
            record.kl += kl
            record.tv += float(0.5 * (pi - qj).abs().sum())
            record.audited += 1
