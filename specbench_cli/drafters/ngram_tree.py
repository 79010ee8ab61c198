"""Prompt lookup with several matched continuations as branches (`--drafter ngram:branches=3`).

The chain proposal (`ngram.NgramDrafter.propose`) copies what followed the earliest earlier
occurrence of the longest matching tail n-gram. `propose_tree` collects, from the longest n-gram
down to the shortest and from the earliest occurrence on, up to `branches` distinct continuations
(a continuation already contained in a collected one is skipped) and merges them into one
deterministic tree, shared prefixes sharing nodes. With `branches = 1` the tree is the chain
proposal. Chain rules in the same run use the chain proposal.

Example: context [1 2 7 8 1 2 9 1 2], branches 2, depth 2: the tail (1 2) occurred at 0-1 and
4-5, followed by [7 8] and [9 1]: two branches from the root, 7 -> 8 and 9 -> 1.
"""

from __future__ import annotations

from typing import Any

from specbench_cli.drafters import DraftContext
from specbench_cli.drafters.ngram import NgramDrafter
from specbench_cli.drafters.tree import TreeDraft, merge_paths

OCCURRENCES_PER_BRANCH = 4  # earliest occurrences remembered per n-gram, per branch asked for


class NgramTreeDrafter(NgramDrafter):
    PARAMS: dict[str, Any] = {**NgramDrafter.PARAMS, "branches": 1}

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        super().check_params(params)
        branches = params.get("branches", 1)  # the base constructor checks before it is set
        if branches < 1:
            raise ValueError(f"drafter 'ngram' needs branches >= 1 (got {branches})")

    def __init__(self, context: DraftContext | None = None, *, max_ngram: int = 3,
                 min_ngram: int = 2, branches: int = 1) -> None:  # fmt: skip
        super().__init__(context, max_ngram=max_ngram, min_ngram=min_ngram)
        self.params["branches"] = branches
        self.check_params(self.params)
        self.branches = branches

    def reset(self, seed: int) -> None:
        super().reset(seed)
        self._ends: list[dict[tuple[int, ...], list[int]]] = [
            {} for _ in range(self.max_ngram + 1)
        ]
        self._tree_indexed = 0  # n-grams ending before this position are in `_ends`
        self._tree_context_len = 0

    def _index_occurrences(self, context: list[int]) -> None:
        if len(context) < self._tree_context_len:  # a new sequence reuses the drafter
            self.reset(0)
        self._tree_context_len = len(context)
        cap = OCCURRENCES_PER_BRANCH * self.branches
        for end in range(max(self._tree_indexed, 1), len(context)):
            for n in range(self.min_ngram, min(self.max_ngram, end) + 1):
                ends = self._ends[n].setdefault(tuple(context[end - n : end]), [])
                if len(ends) < cap:
                    ends.append(end)
        self._tree_indexed = max(self._tree_indexed, len(context))

    def continuations(self, context: list[int], depth: int) -> list[list[int]]:
        """Up to `branches` distinct continuations of at most `depth` tokens, longest match and
        earliest occurrence first."""
        self._index_occurrences(context)
        found: list[list[int]] = []
        length = len(context)
        for n in range(min(self.max_ngram, length - 1), self.min_ngram - 1, -1):
            for end in self._ends[n].get(tuple(context[length - n :]), []):
                path = context[end : end + depth]
                if path and not any(p[: len(path)] == path for p in found):
                    found.append(path)
                    if len(found) == self.branches:
                        return found
        return found

    def propose_tree(self, context: list[int], depth: int, scheme: str) -> TreeDraft:
        """Deterministic drafts suit every scheme."""
        if depth <= 0:
            return TreeDraft([], [], None)
        return merge_paths(self.continuations(context, depth))
