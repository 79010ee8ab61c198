"""Drafters: who proposes the tokens the target verifies.

A drafter is one small module with a class that follows `Drafter`, plus an entry in
`DRAFTERS` (lazy "module:Class" strings, so the CLI never imports what it does not use). Every
drafter is built the same way, `build_drafter(spec, context)`: the spec `name:key=value,...` sets
its parameters (parsed by the type of their defaults) and the `DraftContext` carries what a run
provides (sampling settings, vocabulary, the draft model when `--draft` is given). The engine
sees only the protocol: `propose` returns a `Draft`, `observe` hears how many drafts were kept.

Batches: the engine talks to a `BatchDrafter`, which drafts for every row of a batch at once. A
drafter that holds a model implements it itself (one forward per drafted position for the whole
batch); any other drafter is a single-sequence `Drafter`, run once per row by `PerRowDrafter`
(`drafters/per_row.py`) with one instance, and so one state, per row.

A drafter may also propose token trees for tree rules: `propose_tree(context, depth, scheme)`
returns a `tree.TreeDraft` (the tree engine turns a chain into a one-branch tree otherwise).

A draft-length policy (`draft_length.py`) composes with any drafter; state that outlives one
request lives in the context's `RunMemory`, one per contender.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from specbench_cli.registry import Registry, coerce_params, parse_spec

if TYPE_CHECKING:
    import torch

    from specbench_cli.sampling import SamplingConfig

# the tree-capable subclasses: their chain `propose` is the base drafter's, unchanged
DRAFTERS = Registry("drafter", {
    "model": "specbench_cli.drafters.draft_model_tree:DraftModelTreeDrafter",
    "ngram": "specbench_cli.drafters.ngram_tree:NgramTreeDrafter",
    "suffix": "specbench_cli.drafters.suffix:SuffixDrafter",
})  # fmt: skip


@dataclass
class Draft:
    tokens: list[int]  # n_r <= k proposed ids
    probs: torch.Tensor | None  # [n_r, V] float32 law each token was drawn from; None = one-hot
    forward_s: float = 0.0  # time inside model forward passes (0 for model-free drafters)


class RunMemory:
    """What drafters keep from one request to the next within a run (the suffix drafter's tree
    of earlier outputs). Shared by the drafters built from one `DraftContext`, i.e. one
    contender; each contender gets its own, so contenders never learn from each other."""

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}
        self._holders: dict[int, Any] = {}  # drafters whose last output is not handed over yet

    def get(self, key: str, create: Callable[[], Any]) -> Any:
        if key not in self._items:
            self._items[key] = create()
        return self._items[key]

    def __deepcopy__(self, memo: dict[int, Any]) -> RunMemory:
        # a handle, not a value: per-row copies of a drafter (drafters/per_row.py) share it
        return self

    def hold(self, holder: Any) -> None:
        """`holder` (a drafter) hands its finished output over late, at its next `reset`;
        `settle` asks it to do so now (its `settle()` method)."""
        self._holders[id(holder)] = holder

    def settle(self) -> None:
        """Every holder hands its finished output over now, so the memory is complete."""
        for holder in self._holders.values():
            holder.settle()

    def snapshot(self) -> dict[str, Any]:
        """The settled state, to `restore` later (repeated rounds of the same prompts must all
        start from the memory the first round saw)."""
        self.settle()
        return copy.deepcopy(self._items)

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Back to `snapshot`: what was learned since (outputs of a repeated round) is dropped."""
        self.settle()  # into the state being dropped, not into the restored one
        self._items = copy.deepcopy(snapshot)

    def clear(self) -> None:
        """Forget everything (after the warm-up, whose outputs must not help measured prompts);
        drafters pick up fresh state at their next `reset`."""
        self._items.clear()


@dataclass(frozen=True)
class DraftContext:
    """What a run hands every drafter it builds."""

    sampling: SamplingConfig  # the same logit processing as the target's
    vocab_size: int  # logit width shared by target and draft
    model: Any = None  # the draft model (transformers, eval mode) when one was loaded
    memory: RunMemory = field(default_factory=RunMemory)  # state kept across requests


class Drafter(Protocol):
    name: ClassVar[str]
    PARAMS: ClassVar[dict[str, Any]]  # parameter -> default
    NEEDS_MODEL: ClassVar[bool]  # needs `DraftContext.model` (a run with --draft)
    params: dict[str, Any]

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        """`ValueError` for out-of-range values, before anything is loaded."""

    def reset(self, seed: int) -> None:
        """Start a new sequence: drop caches, reseed the drafting generator."""

    def propose(self, context: list[int], k: int) -> Draft:
        """Propose up to k tokens to follow `context` (all committed ids, pending one included)."""

    def observe(self, num_accepted: int) -> None:
        """Feedback after verification: how many of the last proposal's tokens were kept."""


@dataclass
class BatchDraft:
    drafts: list[Draft]  # one per row of the batch
    forward_s: float = 0.0  # time inside model forward passes, for the whole batch


class BatchDrafter(Protocol):
    def start(self, seeds: list[int]) -> None:
        """Start a batch of `len(seeds)` new sequences; row r's drafting generator gets
        `seeds[r]`."""

    def propose_batch(self, contexts: list[list[int]], ks: list[int]) -> BatchDraft:
        """Up to `ks[r]` tokens to follow each row's `contexts[r]`."""

    def observe_batch(self, accepted: list[int]) -> None:
        """Feedback after verification: drafts kept per row."""

    def keep_rows(self, rows: list[int]) -> None:
        """Only `rows` (indices into the current batch, in order) go on decoding."""


def as_batch_drafter(drafter: Drafter | BatchDrafter) -> BatchDrafter:
    """The drafter itself when it drafts batches, else one instance of it per row."""
    if hasattr(drafter, "propose_batch"):
        return drafter  # type: ignore[return-value]
    from specbench_cli.drafters.per_row import PerRowDrafter

    return PerRowDrafter(drafter)  # type: ignore[arg-type]


def parse_drafter_spec(spec: str) -> tuple[type[Drafter], dict[str, Any]]:
    """(class, checked parameters) of `name` or `name:key=value,...`; `ValueError` otherwise."""
    name, raw = parse_spec(spec)
    cls = DRAFTERS.load(name)
    params = coerce_params(f"drafter {name!r}", cls.PARAMS, raw)
    cls.check_params(params)
    return cls, params


def build_drafter(spec: str, context: DraftContext) -> Drafter:
    """A drafter from its spec, for a run described by `context`."""
    cls, params = parse_drafter_spec(spec)
    if cls.NEEDS_MODEL and context.model is None:
        raise ValueError(f"drafter {cls.name!r} needs a draft model (--draft)")
    return cls(context, **params)
