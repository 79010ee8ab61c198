"""A single-sequence drafter run once per row of a batch (prompt lookup and other model-free
drafters): one instance per row, so each row has its own state (an n-gram index, a suffix tree)
and nothing a row drafts depends on its neighbours.

The instance the engine was given serves row 0; more rows get deep copies of it, made once and
reused across batches (`reset` clears their state). A drafter that holds a model should draft
whole batches itself (`BatchDrafter`) instead of being copied per row.
"""

from __future__ import annotations

import copy

from specbench_cli.drafters import BatchDraft, Drafter


class PerRowDrafter:
    def __init__(self, drafter: Drafter) -> None:
        self.pool = [drafter]  # every instance made so far
        self.rows: list[Drafter] = []  # the instance of each row of the current batch

    def start(self, seeds: list[int]) -> None:
        while len(self.pool) < len(seeds):
            self.pool.append(copy.deepcopy(self.pool[0]))
        self.rows = self.pool[: len(seeds)]
        for drafter, seed in zip(self.rows, seeds, strict=True):
            drafter.reset(seed)

    def propose_batch(self, contexts: list[list[int]], ks: list[int]) -> BatchDraft:
        drafts = [d.propose(c, k) for d, c, k in zip(self.rows, contexts, ks, strict=True)]
        return BatchDraft(drafts, sum(d.forward_s for d in drafts))

    def observe_batch(self, accepted: list[int]) -> None:
        for drafter, a in zip(self.rows, accepted, strict=True):
            drafter.observe(a)

    def keep_rows(self, rows: list[int]) -> None:
        self.rows = [self.rows[r] for r in rows]
