"""A separate, smaller draft model with its own KV cache (docs/drafters.md).

Drafting runs k autoregressive steps of the draft model under the same logit processing as the
target; each token is drawn from the recorded `p_j` (or is the argmax in greedy mode, reported as
one-hot). Cache rule, per row: before drafting, cut the row's cache to the longest prefix it
shares with the committed context (never past the pending last token), then feed the missing
committed tokens: one token after a rejection, two after full acceptance.

The drafter drafts a whole batch at once: one forward of the draft model per drafted position,
over a `RaggedCache` (rows hold different numbers of tokens and feed one or two tokens). A row
allowed fewer tokens than its neighbours rides along on argmax placeholders, which it never
samples, so each row's generator draws exactly what the row drafts, whatever its neighbours do;
the placeholders are cut from its cache at the next proposal like any unverified draft.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from specbench_cli.drafters import BatchDraft, Draft, DraftContext
from specbench_cli.ragged_cache import RaggedCache
from specbench_cli.sampling import process_logits, to_probs
from specbench_cli.timing import device_sync


class DraftModelDrafter:
    name = "model"
    PARAMS: dict[str, Any] = {}
    NEEDS_MODEL = True
    stop_below = 0.0  # set by the `confidence` draft length: stop after a less confident token

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        pass

    def __init__(self, context: DraftContext) -> None:
        self.model = context.model
        self.device = self.model.get_input_embeddings().weight.device
        self.sampling = context.sampling
        self.vocab_size = context.vocab_size  # logits are cut to the ids target and draft share
        self.sync = device_sync(self.device)  # honest timing on GPUs
        self.params: dict[str, Any] = {}
        self.start([0])

    # --- one sequence: a batch of one --------------------------------------------------------

    def reset(self, seed: int) -> None:
        self.start([seed])

    def propose(self, context: list[int], k: int) -> Draft:
        batch = self.propose_batch([context], [k])
        return Draft(batch.drafts[0].tokens, batch.drafts[0].probs, forward_s=batch.forward_s)

    def observe(self, num_accepted: int) -> None:
        pass

    # --- a batch -----------------------------------------------------------------------------

    def start(self, seeds: list[int]) -> None:
        self.cache = RaggedCache(self.model, len(seeds))
        self.cached: list[list[int]] = [[] for _ in seeds]  # ids in each row's cache, in order
        self.generators = [torch.Generator(device=self.device).manual_seed(s) for s in seeds]

    def keep_rows(self, rows: list[int]) -> None:
        self.cache.select(rows)
        self.cached = [self.cached[r] for r in rows]
        self.generators = [self.generators[r] for r in rows]

    def observe_batch(self, accepted: list[int]) -> None:
        pass

    def _sync_cache(self, contexts: list[list[int]]) -> None:
        keep = []
        for cached, context in zip(self.cached, contexts, strict=True):
            n = min(len(cached), len(context) - 1)
            while n > 0 and cached[n - 1] != context[n - 1]:
                n -= 1
            del cached[n:]
            keep.append(n)
        self.cache.truncate(keep)

    def _forward(self, feeds: list[list[int]]) -> torch.Tensor:
        """Every row's logits after its fed tokens, `[B, V]`."""
        start = time.perf_counter()
        logits = self.cache.forward(feeds, right_align=True, last_only=True)
        for cached, feed in zip(self.cached, feeds, strict=True):
            cached.extend(feed)
        self.sync()
        self._forward_s += time.perf_counter() - start
        return logits[:, -1, : self.vocab_size]

    @torch.inference_mode()
    def propose_batch(self, contexts: list[list[int]], ks: list[int]) -> BatchDraft:
        if max(ks, default=0) <= 0:
            return BatchDraft([Draft([], None) for _ in contexts])
        self.sync()
        self._forward_s = 0.0
        self._sync_cache(contexts)
        feeds = [c[len(cached) :] for cached, c in zip(self.cached, contexts, strict=True)]
        tokens: list[list[int]] = [[] for _ in contexts]
        rows: list[list[torch.Tensor]] = [[] for _ in contexts]
        ks = list(ks)  # a row that stops early (confidence) drafts no further
        j = 0
        while j < max(ks):
            logits = process_logits(self._forward(feeds), self.sampling)  # [B, V]
            picks = logits.argmax(-1).tolist()
            probs = None if self.sampling.greedy else to_probs(logits, self.sampling)
            for r, gen in enumerate(self.generators):
                if j >= ks[r]:  # a placeholder row draws nothing
                    continue
                if probs is not None:
                    picks[r] = int(torch.multinomial(probs[r], 1, generator=gen))
                    rows[r].append(probs[r])
                law = None if probs is None else probs[r]
                if self.stop_below and _top_prob(logits[r], law) < self.stop_below:
                    ks[r] = j + 1  # the token itself is kept
            for r, tok in enumerate(picks):
                tokens[r].append(tok)
            feeds = [[tok] for tok in picks]
            j += 1
        drafts = [Draft(t[:k], torch.stack(p) if p else None)
                  for t, p, k in zip(tokens, rows, ks, strict=True)]  # fmt: skip
        return BatchDraft(drafts, forward_s=self._forward_s)


def _top_prob(logits: torch.Tensor, probs: torch.Tensor | None) -> float:
    """Top probability of the token just drafted: of its sampling law, or in greedy mode (no
    law recorded) of the softmax of the logits."""
    return float((logits.softmax(-1) if probs is None else probs).max())
