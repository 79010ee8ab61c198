"""A separate, smaller draft model with its own KV cache (docs/drafters.md).

Drafting runs k autoregressive steps of the draft model under the same logit processing as the
target; each token is drawn from the recorded `p_j` (or is the argmax in greedy mode, reported as
one-hot). Cache rule: before drafting, crop the draft cache to the longest prefix it shares with
the committed context (never past the pending last token), then feed the missing committed
tokens in one forward: one token after a rejection, two after full acceptance.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from specbench_cli.drafters import Draft, DraftContext
from specbench_cli.kvcache import cache_argument, crop_to
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
        self._cache_arg = cache_argument(self.model)
        self.reset(0)

    def reset(self, seed: int) -> None:
        from transformers import DynamicCache

        self.cache = DynamicCache()
        self.cached: list[int] = []  # token ids whose KV entries are in the cache
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def _sync_cache(self, context: list[int]) -> None:
        keep = min(len(self.cached), len(context) - 1)
        while keep > 0 and self.cached[keep - 1] != context[keep - 1]:
            keep -= 1
        if keep < len(self.cached):
            crop_to(self.cache, keep)
            del self.cached[keep:]

    def _forward(self, ids: list[int]) -> torch.Tensor:
        start = time.perf_counter()
        inp = torch.tensor([ids], device=self.device)
        out = self.model(input_ids=inp, use_cache=True, logits_to_keep=1,
                         **{self._cache_arg: self.cache})
        self.cached.extend(ids)
        logits = out.logits[0, -1, : self.vocab_size]
        self.sync()
        self._forward_s += time.perf_counter() - start
        return logits

    @torch.inference_mode()
    def propose(self, context: list[int], k: int) -> Draft:
        if k <= 0:
            return Draft([], None)
        self.sync()
        self._forward_s = 0.0
        self._sync_cache(context)
        feed = context[len(self.cached) :]
        tokens: list[int] = []
        rows: list[torch.Tensor] = []
        for _ in range(k):
            logits = process_logits(self._forward(feed), self.sampling)
            if self.sampling.greedy:
                tok = int(logits.argmax())
            else:
                probs = to_probs(logits, self.sampling)
                tok = int(torch.multinomial(probs, 1, generator=self.generator))
                rows.append(probs)
            tokens.append(tok)
            feed = [tok]
            if self.stop_below and _top_prob(logits, rows) < self.stop_below:
                break
        probs = torch.stack(rows) if rows else None
        return Draft(tokens, probs, forward_s=self._forward_s)

    def observe(self, num_accepted: int) -> None:
        pass


def _top_prob(logits: torch.Tensor, rows: list[torch.Tensor]) -> float:
    """Top probability of the token just drafted: of its sampling law, or in greedy mode (no
    law recorded) of the softmax of the raw logits."""
    return float(rows[-1].max()) if rows else float(logits.softmax(-1).max())
