"""Suffix-tree drafting (SuffixDecoding, Oliaro et al. 2024; docs/drafters.md).

Two depth-limited suffix trees with occurrence counts (`suffix_tree.py`): a per-request tree over
the prompt and the tokens committed so far, and a global tree over the outputs of the requests
this contender finished earlier in the run. At every step, for each match length
m >= `min_match` (the last m tokens of the context occur in a tree), follow the most frequent
continuation below the match while its path probability (product of count ratios) stays
>= `min_token_prob`, for at most min(k, floor(max_spec_factor * m + max_spec_offset)) tokens;
the score of a draft is the sum of its path probabilities (the expected number of accepted
tokens if the counts were the law). The best score over all m wins (ties: the longer match);
the global tree drafts only when the per-request tree has no draft. Drafts are deterministic
(`probs = None`).

The defaults are set by the cost of verification (docs/drafters.md, "Choosing the defaults"):
with the few-row matmul a drafted step costs only 1.1-1.3 plain steps on the CPU, so even a
1-token match drafts, and a match may draft 2 tokens per matched token (more lost as often as it
won in replays, depending on how much the 4th drafted token cost).

The global tree is shared by every suffix drafter built from one `DraftContext` (one contender)
through its `RunMemory`, and holds only *finished* outputs: a request's output is handed over
when the drafter starts its next sequence (or when the run settles the memory between repeated
rounds, `RunMemory.settle`) and folded into the tree at the next sequence's first proposal
(timed as drafting). The one token the drafter never sees (the step's last emitted
token) is missing from it.

Under tree rules (`suffix:branches=B`) the proposal is a token tree: the chain draft plus up to
B - 1 continuations it did not take (other children of the match nodes, each followed greedily),
best score first; `branches=1` is the chain as a one-branch tree.
"""

from __future__ import annotations

from typing import Any

from specbench_cli.drafters import Draft, DraftContext, RunMemory
from specbench_cli.drafters.suffix_tree import Candidate, Location, SuffixTree
from specbench_cli.drafters.tree import TreeDraft, merge_paths
from specbench_cli.registry import coerce_params


class FinishedOutputs:
    """The global tree of one contender: outputs of finished requests, folded in lazily."""

    def __init__(self, max_depth: int) -> None:
        self.tree = SuffixTree(max_depth)
        self.version = 0  # bumped whenever the tree changes: cached matches are then stale
        self._waiting: list[list[int]] = []

    def add(self, tokens: list[int]) -> None:
        if tokens:
            self._waiting.append(tokens)

    def fold_in(self) -> None:
        for tokens in self._waiting:
            self.tree.add_sequence(tokens)
        if self._waiting:
            self._waiting = []
            self.version += 1


class SuffixDrafter:
    name = "suffix"
    PARAMS: dict[str, Any] = {"max_depth": 24, "max_spec_factor": 2.0, "max_spec_offset": 0.0,
                              "min_token_prob": 0.1, "min_match": 1, "global": True,
                              "branches": 1}  # fmt: skip
    NEEDS_MODEL = False

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        if params["max_depth"] < 2:
            raise ValueError(f"drafter 'suffix' needs max_depth >= 2 (got {params['max_depth']})")
        if params["max_spec_factor"] < 0:
            raise ValueError("drafter 'suffix' needs max_spec_factor >= 0 "
                             f"(got {params['max_spec_factor']})")  # fmt: skip
        if not 1 <= params["min_match"] < params["max_depth"]:
            raise ValueError("drafter 'suffix' needs 1 <= min_match < max_depth "
                             f"(got {params['min_match']})")  # fmt: skip
        if params["branches"] < 1:
            raise ValueError(f"drafter 'suffix' needs branches >= 1 (got {params['branches']})")
        if not 0 <= params["min_token_prob"] <= 1:
            raise ValueError("drafter 'suffix' needs 0 <= min_token_prob <= 1 "
                             f"(got {params['min_token_prob']})")  # fmt: skip

    def __init__(self, context: DraftContext | None = None, **params: Any) -> None:
        self.params = coerce_params("drafter 'suffix'", self.PARAMS, params)
        self.check_params(self.params)
        self.max_depth: int = self.params["max_depth"]
        self._memory = context.memory if context is not None else RunMemory()
        self._local: SuffixTree | None = None
        self._shared: FinishedOutputs | None = None
        self.reset(0)

    def reset(self, seed: int) -> None:
        self._hand_over()
        self._local = None  # built at the first proposal, so its cost counts as drafting
        self._prompt_len = 0
        self._last_draft: list[int] = []
        self._accepted = 0
        self._matches: list[Location] = []  # where the context's suffixes sit in the global tree
        self._matched_version = -1
        self._shared = None
        if self.params["global"]:
            depth = self.max_depth
            self._shared = self._memory.get(f"suffix:max_depth={depth}",
                                            lambda: FinishedOutputs(depth))  # fmt: skip
            self._memory.hold(self)

    def settle(self) -> None:
        """Hand the finished sequence's output over now rather than at the next `reset`."""
        self._hand_over()
        self._local = None

    def _hand_over(self) -> None:
        """The sequence just finished: its output goes to the global tree it started with."""
        if self._local is None or self._shared is None:
            return
        seq = self._local.sequences[0]
        self._shared.add(seq[self._prompt_len :] + self._last_draft[: self._accepted])

    def _update(self, context: list[int]) -> None:
        """Bring both trees and the global matches up to `context`."""
        local = self._local
        if local is None or len(context) < len(local.sequences[0]):
            local = self._local = SuffixTree(self.max_depth)
            local.add_sequence()
            self._prompt_len = len(context) - 1  # the prefill's token is the first output
            self._matched_version = -1
        new = context[len(local.sequences[0]) :]
        local.extend(new)
        shared = self._shared
        if shared is None:
            return
        shared.fold_in()
        tree = shared.tree
        if self._matched_version != shared.version:
            self._matched_version = shared.version
            self._matches = []
            new = context[-self.max_depth :]
        for token in new:
            self._matches = tree.match_suffixes(self._matches, token)

    def _best(self, context: list[int], k: int) -> tuple[Candidate, SuffixTree, list[Location]]:
        """The chain draft, the tree it came from and the context's matches in that tree."""
        self._update(context)
        self._last_draft, self._accepted = [], 0
        args = self._args(k)
        local = self._local
        matches = [(n, 0) for n in local.repeated_suffixes()]
        best = local.speculate(matches, *args)
        if self._shared is not None and not best.tokens:  # this request's own text first
            tree = self._shared.tree
            return tree.speculate(self._matches, *args), tree, self._matches
        return best, local, matches

    def _args(self, k: int) -> tuple[int, float, float, float, int]:
        p = self.params
        return k, p["max_spec_factor"], p["max_spec_offset"], p["min_token_prob"], p["min_match"]

    def propose(self, context: list[int], k: int) -> Draft:
        best = self._best(context, k)[0]  # k <= 0: every budget is 0, no draft
        self._last_draft = best.tokens
        return Draft(list(best.tokens), None)

    def propose_tree(self, context: list[int], depth: int, scheme: str) -> TreeDraft:
        """The chain draft plus up to `branches - 1` of the continuations it did not take
        (`SuffixTree.alternatives`, best score first, none a prefix of another), merged into
        one deterministic tree. Which branch the target accepted is not reported back, so
        with branches the last step's accepted drafts are left out of the global tree."""
        best, tree, matches = self._best(context, depth)
        if not best.tokens:
            return TreeDraft([], [], None)
        paths = [best.tokens]
        if self.params["branches"] > 1:
            for other in tree.alternatives(matches, *self._args(depth)):
                if len(paths) == self.params["branches"]:
                    break
                if not any(p[: len(other.tokens)] == other.tokens for p in paths):
                    paths.append(other.tokens)
        self._last_draft = best.tokens if len(paths) == 1 else []
        return merge_paths(paths)

    def observe(self, num_accepted: int) -> None:
        self._accepted = num_accepted
