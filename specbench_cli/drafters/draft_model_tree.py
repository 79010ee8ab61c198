"""The draft model proposing token trees (`--drafter model:branches=3,depth=4,nodes=16`).

Level by level up to `depth` (0: the run's `--k`), the nodes of the frontier, most probable path
first, get up to `branches` children each. With a node budget (`nodes`; 0: none, the full tree)
each level takes at most its share of what is left, `ceil(left / levels to go)`, so the budget
reaches the last level: `branches=3,depth=4,nodes=16` drafts 3, 5, 4 and 4 nodes per level. How
many children a node gets is decided before they are drawn, and the frontier order depends only
on earlier levels, so every sibling group is a clean draw of the scheme the verifying rule needs:

- temperature 0, or a rule that takes any drafts (`greedy`): the top `branches` tokens, one-hot;
- `iid` (`specinfer`, `spectr`): `branches` independent samples (duplicates stay separate nodes);
- `without_replacement` (`rrs`): an exponential race (Gumbel-top-K), whose order is the order of
  sequential sampling without replacement; at most as many children as tokens with mass.

One draft forward per level: the frontier's nodes are fed together with a tree attention mask
(`tree_attention.py`) on top of the cached context; afterwards the draft cache is cropped back
to the context, and the next proposal feeds the newly committed tokens as in chain drafting.
Trees decode one sequence at a time, so tree proposals keep their own single-sequence cache
beside the batched chain cache; chain rules in the same run use the chain proposal
(`draft_model.DraftModelDrafter.propose_batch`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from specbench_cli.drafters import DraftContext
from specbench_cli.drafters.draft_model import DraftModelDrafter
from specbench_cli.drafters.tree import TreeDraft, depths
from specbench_cli.kvcache import cache_argument, crop_to
from specbench_cli.sampling import process_logits, to_probs
from specbench_cli.tree_attention import ancestors, check_tree_attention, tree_forward, tree_mask


class DraftModelTreeDrafter(DraftModelDrafter):
    PARAMS: dict[str, Any] = {"branches": 1, "depth": 0, "nodes": 0}
    SAMPLES_TREES = True  # siblings are samples at temperatures above 0

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        for key, low in (("branches", 1), ("depth", 0), ("nodes", 0)):
            if params[key] < low:
                raise ValueError(f"drafter 'model' needs {key} >= {low} (got {params[key]})")

    def __init__(self, context: DraftContext, *, branches: int = 1, depth: int = 0,
                 nodes: int = 0) -> None:  # fmt: skip
        super().__init__(context)
        self.params = {"branches": branches, "depth": depth, "nodes": nodes}
        self.check_params(self.params)
        self._cache_arg = cache_argument(self.model)

    def start(self, seeds: list[int]) -> None:
        from transformers import DynamicCache

        super().start(seeds)
        self.tree_cache = DynamicCache()
        self.tree_cached: list[int] = []  # token ids whose KV entries are in the tree cache

    def _sync_tree_cache(self, context: list[int]) -> None:
        keep = min(len(self.tree_cached), len(context) - 1)
        while keep > 0 and self.tree_cached[keep - 1] != context[keep - 1]:
            keep -= 1
        if keep < len(self.tree_cached):
            crop_to(self.tree_cache, keep)
            del self.tree_cached[keep:]

    def _feed(self, ids: list[int]) -> torch.Tensor:
        """The logits after feeding committed `ids` to the tree cache, `[V]`."""
        start = time.perf_counter()
        out = self.model(input_ids=torch.tensor([ids], device=self.device), use_cache=True,
                         logits_to_keep=1, **{self._cache_arg: self.tree_cache})  # fmt: skip
        self.tree_cached.extend(ids)
        self.sync()
        self._forward_s += time.perf_counter() - start
        return out.logits[0, -1, : self.vocab_size]

    def _children(self, logits: torch.Tensor, count: int,
                  scheme: str) -> tuple[list[int], torch.Tensor | None]:  # fmt: skip
        """`count` children from one node's logits: (tokens, the law they were drawn from)."""
        processed = process_logits(logits, self.sampling)
        if self.sampling.greedy or scheme == "any":
            order = torch.sort(processed, descending=True, stable=True).indices
            count = min(count, int(torch.isfinite(processed).sum()))  # never a filtered token
            return order[:count].tolist(), None
        probs = to_probs(processed, self.sampling)
        if scheme == "iid":
            picks = torch.multinomial(probs, count, replacement=True, generator=self.generators[0])
            return picks.tolist(), probs
        race = torch.empty_like(probs).exponential_(generator=self.generators[0]) / probs
        count = min(count, int((probs > 0).sum()))
        return torch.sort(race, stable=True).indices[:count].tolist(), probs

    @torch.inference_mode()
    def propose_tree(self, context: list[int], depth: int, scheme: str) -> TreeDraft:
        if depth <= 0:
            return TreeDraft([], [], None)
        check_tree_attention(self.model)
        self.sync()
        self._forward_s = 0.0
        self._sync_tree_cache(context)
        logits = self._feed(context[len(self.tree_cached) :])  # the root: the pending token
        budget = self.params["nodes"] or math.inf
        tokens: list[int] = []
        parents: list[int] = []
        rows: list[torch.Tensor | None] = []
        scores: list[float] = []  # draft log-probability of each node's path
        frontier = [(-1, logits)]
        for level in range(1, depth + 1):
            start = len(tokens)
            share = math.ceil((budget - start) / (depth - level + 1)) if self.params["nodes"] \
                else math.inf
            for node, node_logits in frontier:
                count = int(min(self.params["branches"], share - (len(tokens) - start)))
                if count <= 0:
                    break
                kids, law = self._children(node_logits, count, scheme)
                logp = torch.log_softmax(process_logits(node_logits, self.sampling), -1)
                for tok in kids:
                    tokens.append(tok)
                    parents.append(node)
                    rows.append(law)
                    scores.append((scores[node] if node >= 0 else 0.0) + float(logp[tok]))
            if level == depth or len(tokens) >= budget or len(tokens) == start:
                break
            frontier = self._expand(context, parents, tokens, start, scores)
        crop_to(self.tree_cache, len(self.tree_cached))  # drop the tree: only committed tokens
        probs = None if rows and rows[0] is None else (torch.stack(rows) if rows else None)
        return TreeDraft(tokens, parents, probs, self._forward_s)

    def _expand(self, context: list[int], parents: list[int], tokens: list[int], start: int,
                scores: list[float]) -> list[tuple[int, torch.Tensor]]:  # fmt: skip
        """Feed the level that begins at node `start` and return it as the next frontier
        `(node, logits)`, most probable path first."""
        begin = time.perf_counter()
        new = torch.arange(start, len(tokens))
        seen = ancestors(parents)
        mask = tree_mask(seen, new, len(context), self.model.dtype, self.device)
        positions = [len(context) - 1 + d for d in depths(parents)[start:]]
        logits = tree_forward(self.model, tokens[start:], positions, mask, self.tree_cache,
                              self._cache_arg, self.vocab_size)  # fmt: skip
        self.sync()
        self._forward_s += time.perf_counter() - begin
        order = sorted(range(len(new)), key=lambda j: -scores[start + j])
        return [(start + j, logits[j]) for j in order]

