"""The decoding loop: one loop for the autoregressive baseline and every strategy, over a batch
of sequences (one sequence is a batch of one, through the same code).

Invariant between steps, per row (docs/engine.md): the committed sequence has L tokens, the
target KV cache holds the first L-1, and the last one is pending. A step drafts n_r <= k tokens
per row, runs one target forward over every row's [pending, drafts] (ragged, in a
`RaggedCache`), verifies the drafted rows in one call of the strategy, commits per row the a_r
accepted drafts plus one emitted token (correction or bonus), and cuts each row's cache to
L + a_r entries. A row without drafts takes an ordinary decoding step: with no drafter that is
the baseline. A row that reaches EOS or its token budget leaves the batch in the same step.

Randomness is per row: each row owns a generator seeded with its own seed, from which it draws
exactly what a batch of one would draw, and its verification noise is a pure function of its seed
and its length (`Noise(seed, counter)`), so a row's tokens never depend on its neighbours'.

The engine knows models, a drafter and a strategy through their protocols and yields, per target
forward pass, one `StepRecord` per row that took part; it never prints or aggregates. An
observer (the divergence audit) may look at each row's distributions after the step's clock
stopped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

from specbench_cli.drafters import as_batch_drafter
from specbench_cli.noise import SEED_HIGH
from specbench_cli.ragged_cache import RaggedCache
from specbench_cli.sampling import SamplingConfig, process_logits, sample, to_probs
from specbench_cli.timing import device_sync

if TYPE_CHECKING:
    from specbench_cli.drafters import BatchDrafter, Drafter
    from specbench_cli.strategies import Strategy


@dataclass
class StepRecord:
    drafted: int  # n_r, tokens the drafter proposed (0 for prefill and baseline steps)
    accepted: int  # drafts kept
    tokens: list[int]  # ids committed by this step
    step_s: float  # wall time of the whole step, for the whole batch (observers excluded)
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


@dataclass
class _Row:
    """One sequence of a batch while it decodes."""

    index: int  # position in the batch the caller passed
    context: list[int]  # prompt + committed tokens; the last one is pending
    budget: int  # new tokens still allowed
    seed: int  # this row's verification noise key (docs/randomness.md)
    generator: torch.Generator  # this row's sampling randomness (plain steps)


class Engine:
    """Speculative decoding for a batch of sequences (or one).

    Args:
        model: target causal LM (transformers), eval mode.
        vocab_size: logit width shared with the drafter (logits are cut to it).
        sampling: temperature / top-k / top-p, applied identically to target and draft.
        strategy: acceptance rule, or None for the baseline.
        drafter: the drafter, or None for the baseline: a `BatchDrafter`, or a single-sequence
            `Drafter` that is then run once per row (`drafters.as_batch_drafter`).
        k: tokens drafted per step.
        eos_ids: generation stops after any of these is committed.
        observer: called after each verified step, per drafted row, outside its timing (the
            divergence audit).
    """

    def __init__(
        self,
        model: Any,
        vocab_size: int,
        sampling: SamplingConfig,
        strategy: Strategy | None = None,
        drafter: Drafter | BatchDrafter | None = None,
        k: int = 4,
        eos_ids: tuple[int, ...] = (),
        observer: StepObserver | None = None,
    ):
        self.model = model
        self.device = model.get_input_embeddings().weight.device
        self.vocab_size = vocab_size
        self.sampling = sampling
        self.strategy = strategy
        self.drafter = None if drafter is None else as_batch_drafter(drafter)
        self.k = k if drafter is not None else 0
        self.eos_ids = frozenset(eos_ids)
        self.observer = observer
        self.sync = device_sync(self.device)

    def generate(
        self, prompt_ids: list[int], max_new_tokens: int, seed: int
    ) -> Iterator[StepRecord]:
        """Decode one sequence: a batch of one."""
        for records in self.generate_batch([prompt_ids], max_new_tokens, [seed]):
            yield records[0]

    @torch.inference_mode()
    def generate_batch(
        self, prompts: list[list[int]], max_new_tokens: int, seeds: list[int]
    ) -> Iterator[dict[int, StepRecord]]:
        """Decode `prompts` together, row `r` with randomness from `seeds[r]` only. Yields per
        target forward pass the record of every row that took part, by its index in `prompts`;
        a row leaves after the record holding its EOS or its last budgeted token."""
        if len(prompts) != len(seeds) or not prompts or not all(prompts):
            raise ValueError("generate_batch needs one seed per prompt and no empty prompt")
        rows = [_Row(i, list(p), max_new_tokens, s & SEED_HIGH,  # the key: the low 63 bits
                     torch.Generator(self.device).manual_seed(s))
                for i, (p, s) in enumerate(zip(prompts, seeds, strict=True))]  # fmt: skip
        if self.drafter is not None:
            self.drafter.start([s + 1 for s in seeds])
        cache = RaggedCache(self.model, len(rows))
        rows, records = self._prefill(rows, cache)
        yield records
        while rows:
            rows, records = self._step(rows, cache)
            yield records

    def _prefill(self, rows: list[_Row], cache: RaggedCache
                 ) -> tuple[list[_Row], dict[int, StepRecord]]:  # fmt: skip
        """Left-padded forward over the prompts; each row's first new token becomes pending."""
        self.sync()
        t0 = time.perf_counter()
        logits = cache.forward([r.context for r in rows], right_align=True, last_only=True)
        self.sync()
        t1 = time.perf_counter()
        emitted = self._emit_plain(logits[:, -1, : self.vocab_size], rows)
        t2 = time.perf_counter()
        news = [self._commit_row(r, [], 0, tok) for r, tok in zip(rows, emitted, strict=True)]
        live = self._finish(rows, cache)
        t3 = time.perf_counter()
        records = {r.index: StepRecord(0, 0, new, t3 - t0, t1 - t0, 0.0, 0.0, t2 - t1, prefill=True)
                   for r, new in zip(rows, news, strict=True)}  # fmt: skip
        return live, records

    def _step(self, rows: list[_Row], cache: RaggedCache
              ) -> tuple[list[_Row], dict[int, StepRecord]]:  # fmt: skip
        t0 = time.perf_counter()
        drafts, draft_probs, draft_forward_s = self._draft(rows)
        t1 = time.perf_counter()
        logits = cache.forward([[r.context[-1]] + d for r, d in zip(rows, drafts, strict=True)],
                               last_only=not any(drafts))[..., : self.vocab_size]  # fmt: skip
        self.sync()
        t2 = time.perf_counter()
        accepted, emitted = self._decide(logits, rows, drafts, draft_probs)
        t3 = time.perf_counter()
        # each row keeps pending + accepted drafts; its emitted token becomes the new pending one
        cache.truncate([len(r.context) + a for r, a in zip(rows, accepted, strict=True)])
        news = [self._commit_row(*row) for row in zip(rows, drafts, accepted, emitted, strict=True)]
        if self.drafter is not None:
            self.drafter.observe_batch(accepted)
        live = self._finish(rows, cache)
        t4 = time.perf_counter()
        records = {}
        observed = self.observer is not None and any(drafts)
        target_probs = self._target_probs(logits) if observed else None  # the clock stopped
        for i, r in enumerate(rows):
            record = StepRecord(len(drafts[i]), accepted[i], news[i], t4 - t0, t2 - t1, t1 - t0,
                                draft_forward_s, t3 - t2)  # fmt: skip
            if target_probs is not None and drafts[i]:
                p = None if self.sampling.greedy else draft_probs[i]
                self.observer(record, target_probs[i, : len(drafts[i]) + 1], p, drafts[i])
            records[r.index] = record
        return live, records

    def _draft(self, rows: list[_Row]) -> tuple[list[list[int]], list[torch.Tensor | None], float]:
        """Each row's drafts (cut by `_cut_draft`), their laws, and the drafter's forward time."""
        if self.drafter is None:
            return [[] for _ in rows], [None] * len(rows), 0.0
        batch = self.drafter.propose_batch([r.context for r in rows],
                                           [min(self.k, r.budget - 1) for r in rows])  # fmt: skip
        drafts, probs = [], []
        for r, draft in zip(rows, batch.drafts, strict=True):
            tokens = self._cut_draft(draft.tokens, r.budget)
            drafts.append(tokens)
            probs.append(draft.probs[: len(tokens)] if draft.probs is not None and tokens else None)
        return drafts, probs, batch.forward_s

    def _emit_plain(self, logits: torch.Tensor, rows: list[_Row]) -> list[int]:
        """One token per row from its logits `[B, V]`: argmax at temperature 0, else a sample
        with the row's own generator."""
        processed = process_logits(logits, self.sampling)
        if self.sampling.greedy:
            return processed.argmax(-1).tolist()
        probs = to_probs(processed, self.sampling)
        return [int(sample(probs[i : i + 1], r.generator)) for i, r in enumerate(rows)]

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

    def _commit_row(self, row: _Row, drafts: list[int], accepted: int, emitted: int) -> list[int]:
        new = self._commit(drafts, accepted, emitted)
        row.context.extend(new)
        row.budget -= len(new)
        return new

    def _finish(self, rows: list[_Row], cache: RaggedCache) -> list[_Row]:
        """The rows still decoding; finished rows leave the cache and the drafter at once, so no
        token is computed for them afterwards."""
        keep = [i for i, r in enumerate(rows) if r.budget > 0 and r.context[-1] not in self.eos_ids]
        if keep and len(keep) < len(rows):
            cache.select(keep)
            if self.drafter is not None:
                self.drafter.keep_rows(keep)
        return [rows[i] for i in keep]

    def _decide(self, logits: torch.Tensor, rows: list[_Row], drafts: list[list[int]],
                draft_probs: list[torch.Tensor | None]) -> tuple[list[int], list[int]]:  # fmt: skip
        """Per row, accepted drafts and the emitted token. Logits `[B, W, V]`."""
        B = len(rows)
        accepted, emitted = [0] * B, [0] * B
        plain = [i for i in range(B) if not drafts[i]]
        drafted = [i for i in range(B) if drafts[i]]
        if plain:
            rows_logits = logits[:, 0] if len(plain) == B else logits[plain, 0]
            tokens = self._emit_plain(rows_logits, [rows[i] for i in plain])
            for i, tok in zip(plain, tokens, strict=True):
                emitted[i] = tok
        if drafted:
            sub = logits if len(drafted) == B else logits[drafted]
            a, e = self._verify(sub, [drafts[i] for i in drafted],
                                [draft_probs[i] for i in drafted],
                                [rows[i] for i in drafted])  # fmt: skip
            for j, i in enumerate(drafted):
                accepted[i], emitted[i] = a[j], e[j]
        return accepted, emitted

    def _verify(self, logits: torch.Tensor, drafts: list[list[int]],
                draft_probs: list[torch.Tensor | None], rows: list[_Row]
                ) -> tuple[list[int], list[int]]:  # fmt: skip
        """The one verification call: every drafted row at once from the raw logits (the
        strategy's backend applies the sampling settings itself where it can). A row's noise is
        `Noise(seed, counter)` with its own seed and its length (prompt plus committed tokens)
        as the counter: a pure function of the row, new at every step since each step commits
        a token, and no generator draw."""
        p = None if self.sampling.greedy else _draft_law(draft_probs, drafts, logits)
        return self.strategy.verify_rows(logits, p, drafts, self.sampling,
                                         [r.seed for r in rows],
                                         [len(r.context) for r in rows])  # fmt: skip

    def _target_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """The target laws `[B, W, V]` of a verified step, for the observer."""
        return to_probs(process_logits(logits, self.sampling), self.sampling)


def _draft_law(probs: list[torch.Tensor | None], drafts: list[list[int]],
               like: torch.Tensor) -> torch.Tensor | None:  # fmt: skip
    """`[B, k, V]`: each row's draft laws, one-hot where its drafter reported none, zero past
    its drafts (those positions are never tested); None when every row's drafts are one-hot."""
    if all(p is None for p in probs):
        return None
    out = like.new_zeros(len(drafts), like.shape[1] - 1, like.shape[-1], dtype=torch.float32)
    for i, (p, d) in enumerate(zip(probs, drafts, strict=True)):
        if p is None:
            out[i, torch.arange(len(d)), torch.tensor(d)] = 1.0
        else:
            out[i, : len(d)] = p
    return out
