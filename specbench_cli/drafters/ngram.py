"""Prompt lookup (PLD, n-gram) drafting: copy what followed an earlier occurrence of the tail.

Saxena 2023; transformers `PromptLookupCandidateGenerator`; vLLM `NgramProposer`
(docs/drafters.md). For n = max_ngram down to min_ngram, find the earliest earlier occurrence of
the last n tokens of prompt + output and propose the (at most k) tokens that followed it; a
partial continuation at the end of the context is allowed. No match: propose nothing, and the
step is an ordinary decoding step.

Default `min_ngram=2`, not the usual 1: a single repeated token is a weak signal
and every rejected draft token costs verify time. Measured on the default model (2-core CPU,
greedy, 8 Spec-Bench-style prompts, 64 new tokens, interleaved in one process): min_ngram 1 ->
1.05x the autoregressive speed (576 drafted, 126 accepted), 2 -> 1.20-1.24x (215 drafted, 112
accepted), 3 -> 1.17x. Taking the latest instead of the earliest occurrence, or drafting fewer
tokens for shorter matches, did not help (1.18x, 1.05x).

An index from each n-gram to the end of its earliest occurrence is updated incrementally, so a
proposal costs O(max_ngram) dictionary look-ups instead of a scan of the whole context.

Example: context [5 6 7 9 5 6], max_ngram 3, k 3 -> the 2-gram (5 6) first ended at 2,
propose [7 9 5].
"""

from __future__ import annotations

from typing import Any

from specbench_cli.drafters import Draft, DraftContext


class NgramDrafter:
    name = "ngram"
    PARAMS: dict[str, Any] = {"max_ngram": 3, "min_ngram": 2}
    NEEDS_MODEL = False

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        if not 1 <= params["min_ngram"] <= params["max_ngram"]:
            raise ValueError(
                f"drafter 'ngram' needs 1 <= min_ngram <= max_ngram (got "
                f"min_ngram={params['min_ngram']}, max_ngram={params['max_ngram']})"
            )

    def __init__(self, context: DraftContext | None = None, *, max_ngram: int = 3,
                 min_ngram: int = 2) -> None:  # fmt: skip
        self.params = {"max_ngram": max_ngram, "min_ngram": min_ngram}
        self.check_params(self.params)
        self.max_ngram, self.min_ngram = max_ngram, min_ngram
        self.reset(0)

    def reset(self, seed: int) -> None:
        self._index: list[dict[tuple[int, ...], int]] = [{} for _ in range(self.max_ngram + 1)]
        self._indexed_end = 0  # n-grams ending before this position are in the index
        self._context_len = 0

    def _extend_index(self, context: list[int], upto: int) -> None:
        # index n-grams ending at positions [indexed_end, upto); setdefault keeps the earliest
        for end in range(max(self._indexed_end, 1), upto):
            for n in range(self.min_ngram, min(self.max_ngram, end) + 1):
                self._index[n].setdefault(tuple(context[end - n : end]), end)
        self._indexed_end = max(self._indexed_end, upto)

    def propose(self, context: list[int], k: int) -> Draft:
        if len(context) < self._context_len:  # a new sequence reuses the drafter
            self.reset(0)
        self._context_len = len(context)
        length = len(context)
        self._extend_index(context, length)  # the trailing n-gram itself is never a match
        if k <= 0:
            return Draft([], None)
        for n in range(min(self.max_ngram, length - 1), self.min_ngram - 1, -1):
            end = self._index[n].get(tuple(context[length - n :]))
            if end is not None:
                return Draft(list(context[end : end + k]), None)
        return Draft([], None)

    def observe(self, num_accepted: int) -> None:
        pass
