"""Draft-length policies: how many of the k allowed tokens a drafter proposes (docs/drafters.md).

A policy composes with any drafter, so the engine keeps calling `propose(context, k)` and
`observe(num_accepted)` and records exactly what was drafted:

- `fixed`: the drafter's own length, at most k (the default).
- `heuristic`: transformers' `num_assistant_tokens_schedule="heuristic"`: the allowed length
  starts at k for every sequence, grows by 2 after a step that accepted every proposed token and
  shrinks by 1 after any rejection, always within [1, k]. An empty proposal leaves it unchanged
  (nothing was learnt).
- `confidence:threshold=0.4`: a drafter with a model stops after a token whose top probability
  (the draft's own distribution after logit processing; the softmax of the raw logits in greedy
  mode) is below the threshold, the token itself included (transformers'
  `assistant_confidence_threshold`, default 0.4). Model-free drafters have no such probability.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from specbench_cli.registry import Registry, coerce_params, parse_spec

if TYPE_CHECKING:
    from specbench_cli.drafters import BatchDraft, BatchDrafter, Draft, Drafter

DRAFT_LENGTHS = Registry("draft length", {
    "fixed": "specbench_cli.drafters.draft_length:FixedLength",
    "heuristic": "specbench_cli.drafters.draft_length:HeuristicLength",
    "confidence": "specbench_cli.drafters.draft_length:ConfidenceStop",
})  # fmt: skip


class Policy:
    """A draft-length policy: its parameters, a check against a drafter class (before anything
    loads) and `apply`, which returns the drafter to hand the engine."""

    PARAMS: dict[str, Any] = {}

    @classmethod
    def check(cls, drafter_cls: type, params: dict[str, Any]) -> None:
        pass

    @classmethod
    def apply(cls, drafter: Drafter, k: int, params: dict[str, Any]) -> Drafter:
        return drafter


class FixedLength(Policy):
    pass


def next_length(length: int, proposed: int, accepted: int, k: int) -> int:
    """The heuristic schedule: +2 after a proposal accepted entirely, -1 after a rejection,
    within [1, k]; an empty proposal teaches nothing."""
    if not proposed:
        return length
    return min(length + 2, k) if accepted >= proposed else max(length - 1, 1)


class HeuristicLength(Policy):
    """Wraps a drafter; the allowed length moves +2 / -1 within [1, k] (see the module doc)."""

    @classmethod
    def apply(cls, drafter: Drafter, k: int, params: dict[str, Any]) -> Drafter:
        if hasattr(drafter, "propose_batch"):  # a drafter with a model drafts whole batches
            return HeuristicBatchLength(drafter, k)  # type: ignore[return-value]
        return cls(drafter, k)

    def __init__(self, drafter: Drafter, k: int) -> None:
        self.drafter = drafter
        self.name = drafter.name
        self.params = drafter.params
        self.max_length = k
        self.reset(0)

    @property
    def length(self) -> int:
        """The current allowed draft length."""
        return self._length

    def reset(self, seed: int) -> None:
        self.drafter.reset(seed)
        self._length = self.max_length
        self._proposed = 0

    def propose(self, context: list[int], k: int) -> Draft:
        draft = self.drafter.propose(context, min(k, self._length))
        self._proposed = len(draft.tokens)
        return draft

    def observe(self, num_accepted: int) -> None:
        self._length = next_length(self._length, self._proposed, num_accepted, self.max_length)
        self.drafter.observe(num_accepted)


class HeuristicBatchLength:
    """The heuristic around a drafter that drafts whole batches: one allowed length per row,
    each moving exactly as `HeuristicLength` moves it for a batch of one."""

    def __init__(self, drafter: BatchDrafter, k: int) -> None:
        self.drafter = drafter
        self.name = drafter.name  # type: ignore[attr-defined]
        self.params = drafter.params  # type: ignore[attr-defined]
        self.max_length = k
        self.start([0])

    def start(self, seeds: list[int]) -> None:
        self.drafter.start(seeds)
        self._lengths = [self.max_length] * len(seeds)
        self._proposed = [0] * len(seeds)

    def propose_batch(self, contexts: list[list[int]], ks: list[int]) -> BatchDraft:
        allowed = [min(k, length) for k, length in zip(ks, self._lengths, strict=True)]
        batch = self.drafter.propose_batch(contexts, allowed)
        self._proposed = [len(d.tokens) for d in batch.drafts]
        return batch

    def observe_batch(self, accepted: list[int]) -> None:
        for r, (a, proposed) in enumerate(zip(accepted, self._proposed, strict=True)):
            self._lengths[r] = next_length(self._lengths[r], proposed, a, self.max_length)
        self.drafter.observe_batch(accepted)

    def keep_rows(self, rows: list[int]) -> None:
        self._lengths = [self._lengths[r] for r in rows]
        self._proposed = [self._proposed[r] for r in rows]
        self.drafter.keep_rows(rows)


class ConfidenceStop(Policy):
    PARAMS: dict[str, Any] = {"threshold": 0.4}

    @classmethod
    def check(cls, drafter_cls: type, params: dict[str, Any]) -> None:
        if not 0 <= params["threshold"] <= 1:
            raise ValueError(f"draft length 'confidence' needs 0 <= threshold <= 1 "
                             f"(got {params['threshold']})")  # fmt: skip
        if not hasattr(drafter_cls, "stop_below"):
            raise ValueError(f"draft length 'confidence' needs a drafter with a model; "
                             f"{drafter_cls.name!r} has no draft probabilities")  # fmt: skip

    @classmethod
    def apply(cls, drafter: Drafter, k: int, params: dict[str, Any]) -> Drafter:
        drafter.stop_below = params["threshold"]
        return drafter


def parse_draft_length(spec: str, drafter_cls: type) -> tuple[type[Policy], dict[str, Any]]:
    """(policy class, checked parameters) of `name[:key=value,...]` for drafters of
    `drafter_cls`; `ValueError` otherwise."""
    name, raw = parse_spec(spec)
    policy = DRAFT_LENGTHS.load(name)
    params = coerce_params(f"draft length {name!r}", policy.PARAMS, raw)
    policy.check(drafter_cls, params)
    return policy, params


def with_draft_length(drafter: Drafter, spec: str, k: int) -> Drafter:
    """`drafter` under the draft-length policy `spec`, for at most k tokens per step."""
    policy, params = parse_draft_length(spec, type(drafter))
    return policy.apply(drafter, k, params)
