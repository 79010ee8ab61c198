"""The decoding loop for tree rules (batch size 1): one target forward pass verifies a tree.

Same invariant as the chain loop (docs/engine.md): the committed sequence has L tokens, the
target KV cache holds the first L-1 and the last one is pending. A step asks the drafter for a
tree (`propose_tree`, or its chain as a one-branch tree), cuts it at the token budget and below
any EOS, and runs one target forward over [pending, nodes...] with a 4-D mask (each node sees the
cached prefix, its ancestors and itself) and position ids `L-1+depth`. Row 0 of the output is the
target at the root, row i+1 the target after node i's path. The tree rule walks it; the cache
then keeps the prefix, the pending token and the accepted path, in order (the rest of the tree's
entries are dropped), and the emitted token becomes pending.

The engine yields `TreeStepRecord`s: `drafted` is the depth of the verified tree (so
per-position acceptance reads as per-depth acceptance) and `nodes` its size. Tree rules are
lossless, so there is no divergence observer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from specbench_cli.drafters.tree import TreeDraft, chain_tree
from specbench_cli.engine import StepRecord
from specbench_cli.kvcache import cache_argument
from specbench_cli.sampling import SamplingConfig, process_logits, sample, to_probs
from specbench_cli.timing import device_sync
from specbench_cli.tree_attention import (
    ancestors,
    check_tree_attention,
    keep_cache_positions,
    tree_forward,
    tree_mask,
)

if TYPE_CHECKING:
    from specbench_cli.drafters import Drafter
    from specbench_cli.strategies import TreeStrategy


@dataclass
class TreeStepRecord(StepRecord):
    nodes: int = 0  # tree nodes verified in this step (drafted is the tree's depth)


class TreeEngine:
    """Speculative decoding with token trees for one sequence at a time.

    Args:
        model: target causal LM (transformers), eval mode; must pass `check_tree_attention`.
        vocab_size: logit width shared with the drafter.
        sampling: temperature / top-k / top-p, applied identically to target and draft.
        strategy: a tree rule (`TreeStrategy`).
        drafter: any drafter; `propose_tree(context, depth, scheme)` when it has one.
        depth: deepest tree level drafted per step.
        eos_ids: generation stops after any of these is committed.
    """

    def __init__(self, model: Any, vocab_size: int, sampling: SamplingConfig,
                 strategy: TreeStrategy, drafter: Drafter, depth: int = 4,
                 eos_ids: tuple[int, ...] = ()) -> None:  # fmt: skip
        check_tree_attention(model)
        self.model = model
        self.device = model.get_input_embeddings().weight.device
        self.dtype = model.get_input_embeddings().weight.dtype
        self.vocab_size = vocab_size
        self.sampling = sampling
        self.strategy = strategy
        self.drafter = drafter
        self.depth = depth
        self.eos_ids = frozenset(eos_ids)
        self.sync = device_sync(self.device)
        self._cache_arg = cache_argument(model)

    def _plain(self, ids: list[int], cache: Any, gen: torch.Generator) -> int:
        """One ordinary decoding forward over `ids`; the next token from its last position."""
        out = self.model(input_ids=torch.tensor([ids], device=self.device), use_cache=True,
                         logits_to_keep=1, **{self._cache_arg: cache})  # fmt: skip
        processed = process_logits(out.logits[0, -1, : self.vocab_size], self.sampling)
        if self.sampling.greedy:
            return int(processed.argmax())
        return int(sample(to_probs(processed, self.sampling)[None], gen))

    def _propose(self, context: list[int], depth: int) -> TreeDraft:
        if depth <= 0:
            return TreeDraft([], [], None)
        propose_tree = getattr(self.drafter, "propose_tree", None)
        if propose_tree is None:
            tree = chain_tree(self.drafter.propose(context, depth))
        else:
            tree = propose_tree(context, depth, self.strategy.draft_scheme)
        return tree.cut(depth, self.eos_ids)

    def _commit(self, path_tokens: list[int], emitted: int) -> list[int]:
        """The accepted path and the emitted token; nothing follows an accepted EOS (the tree
        was cut below EOS nodes, so one can only end the path)."""
        if path_tokens and path_tokens[-1] in self.eos_ids:
            return path_tokens
        return path_tokens + [emitted]

    @torch.inference_mode()
    def generate(self, prompt_ids: list[int], max_new_tokens: int,
                 seed: int) -> Iterator[TreeStepRecord]:  # fmt: skip
        from transformers import DynamicCache

        gen = torch.Generator(device=self.device).manual_seed(seed)
        self.drafter.reset(seed + 1)
        cache = DynamicCache()
        self.sync()
        t0 = time.perf_counter()
        first = self._plain(prompt_ids, cache, gen)  # prefill; the first token is pending
        self.sync()
        t1 = time.perf_counter()
        yield TreeStepRecord(0, 0, [first], t1 - t0, t1 - t0, 0.0, 0.0, 0.0, prefill=True)
        context = list(prompt_ids) + [first]
        produced = 1
        while produced < max_new_tokens and context[-1] not in self.eos_ids:
            yield self._step(context, cache, gen, max_new_tokens - produced)
            produced = len(context) - len(prompt_ids)

    def generate_batch(self, prompts: list[list[int]], max_new_tokens: int,
                       seeds: list[int]) -> Iterator[dict[int, TreeStepRecord]]:  # fmt: skip
        """The batch interface of `Engine`, for a batch of one: trees decode one sequence at a
        time (config validation rejects `--batch-size` > 1 with tree rules)."""
        if len(prompts) != 1:
            raise ValueError(f"tree decoding takes one sequence at a time, got {len(prompts)}")
        for step in self.generate(prompts[0], max_new_tokens, seeds[0]):
            yield {0: step}

    def _step(self, context: list[int], cache: Any, gen: torch.Generator,
              budget: int) -> TreeStepRecord:  # fmt: skip
        """One speculative step; extends `context` with the committed tokens."""
        t0 = time.perf_counter()
        tree = self._propose(context, min(self.depth, budget - 1))
        t1 = time.perf_counter()
        if not tree.tokens:  # nothing drafted: an ordinary decoding step
            new = [self._plain([context[-1]], cache, gen)]
            self.sync()
            t2 = t3 = time.perf_counter()
            path: list[int] = []
        else:
            logits = self._forward_tree(context, tree, cache)
            t2 = time.perf_counter()
            path, emitted = self._verify(logits, tree, gen)
            t3 = time.perf_counter()
            prefix = len(context)  # cached prefix + the pending root
            keep = torch.cat([torch.arange(prefix), prefix + torch.tensor(path, dtype=torch.long)])
            keep_cache_positions(cache, keep)
            new = self._commit([tree.tokens[i] for i in path], emitted)
        context.extend(new)
        self.drafter.observe(len(path))
        t4 = time.perf_counter()
        return TreeStepRecord(tree.max_depth, len(path), new, t4 - t0, t2 - t1, t1 - t0,
                              tree.forward_s, t3 - t2, nodes=len(tree.tokens))  # fmt: skip

    def _forward_tree(self, context: list[int], tree: TreeDraft, cache: Any) -> torch.Tensor:
        """Target logits `[N+1, V]` for the root (the pending token) and every node."""
        cached = len(context) - 1
        seen = ancestors([-1] + [p + 1 for p in tree.parents])  # the root is node 0
        rows = torch.arange(len(tree.tokens) + 1)
        mask = tree_mask(seen, rows, cached, self.dtype, self.device)
        positions = [cached] + [cached + d for d in tree.depth]
        logits = tree_forward(self.model, [context[-1]] + tree.tokens, positions, mask, cache,
                              self._cache_arg, self.vocab_size)  # fmt: skip
        self.sync()
        return logits

    def _verify(self, logits: torch.Tensor, tree: TreeDraft,
                gen: torch.Generator) -> tuple[list[int], int]:  # fmt: skip
        from specbench_cli.strategies import DraftTree

        processed = process_logits(logits, self.sampling)  # [N+1, V]
        target_probs = to_probs(processed, self.sampling)
        probs = None if self.sampling.greedy else tree.probs
        draft = DraftTree(torch.tensor(tree.tokens, device=self.device),
                          torch.tensor(tree.parents, device=self.device), probs)  # fmt: skip
        # inputs come from our own softmax: value checks would cost more than the walk
        result = self.strategy.verify_tree(target_probs, draft, gen, target_logits=processed,
                                           validate=False)
        return result.path.tolist(), int(result.tokens[-1])
