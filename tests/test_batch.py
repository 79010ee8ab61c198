"""Batched decoding on tiny random-weight models: the ragged KV cache against fresh forwards,
greedy speculative output equal to the baseline at the same batch size (and to batch 1), rows
leaving at EOS or their budget, per-row randomness, and the exact law of the first tokens per
row at batch > 1 (docs/engine.md).

Run: .venv/bin/python -m pytest tests/test_batch.py -q
"""

from __future__ import annotations

import random

import pytest
import torch
from test_engine import CheckedDraftModel, exact_law, hf_greedy, law_pvalue, tiny_lm

from specbench_cli.drafters import DraftContext
from specbench_cli.drafters.draft_model import DraftModelDrafter
from specbench_cli.drafters.ngram import NgramDrafter
from specbench_cli.engine import Engine
from specbench_cli.ragged_cache import RaggedCache
from specbench_cli.sampling import SamplingConfig
from specbench_cli.strategies import get_strategy

GREEDY = SamplingConfig(temperature=0.0)
VOCAB = 16


@pytest.fixture(scope="module")
def target():
    return tiny_lm(VOCAB, seed=0)


@pytest.fixture(scope="module")
def draft():
    return tiny_lm(VOCAB, seed=1, layers=1, hidden=16)


def ragged_prompts(count: int, seed: int = 5) -> list[list[int]]:
    """Prompts of lengths 3..14 with repeats inside, so prompt lookup finds drafts."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(count):
        base = torch.randint(0, VOCAB, (2 + i % 5,), generator=g).tolist()
        out.append((base * 3)[: 3 + (5 * i) % 12])
    return out


def run_batch(engine: Engine, prompts: list[list[int]], n: int, seeds: list[int] | None = None):
    """Each row's tokens and the number of target forward passes each row took part in."""
    outputs = [[] for _ in prompts]
    passes = [0] * len(prompts)
    for records in engine.generate_batch(prompts, n, seeds or list(range(len(prompts)))):
        for i, step in records.items():
            outputs[i] += step.tokens
            passes[i] += 1
    return outputs, passes


def in_groups(engine: Engine, prompts: list[list[int]], n: int, size: int):
    out = []
    for start in range(0, len(prompts), size):
        out += run_batch(engine, prompts[start : start + size], n,
                         list(range(start, min(start + size, len(prompts)))))[0]  # fmt: skip
    return out


# --- the ragged cache ------------------------------------------------------------------------

def test_ragged_cache_matches_fresh_forwards(target):
    """After random appends, truncations, row drops and compactions, each row's logits for one
    more token equal a fresh unbatched forward over exactly the tokens the row holds."""
    rng = random.Random(0)
    rows = [[rng.randrange(VOCAB) for _ in range(rng.randint(1, 9))] for _ in range(5)]
    cache = RaggedCache(target, len(rows))
    with torch.no_grad():
        cache.forward(rows, right_align=True, last_only=True)
        held = [list(r) for r in rows]
        compacted = 0
        for step in range(40):
            feeds = [[rng.randrange(VOCAB) for _ in range(rng.randint(1, 4))] for _ in held]
            logits = cache.forward(feeds, right_align=step % 2 == 1)
            W = logits.shape[1]
            for r, (prefix, feed) in enumerate(zip(held, feeds, strict=True)):
                fresh = target(input_ids=torch.tensor([prefix + feed])).logits[0, -len(feed):]
                at = W - len(feed) if step % 2 == 1 else 0
                torch.testing.assert_close(logits[r, at : at + len(feed)], fresh,
                                           rtol=1e-4, atol=1e-4)  # fmt: skip
                prefix.extend(feed)
            keep = [rng.randint(max(1, len(h) - 4), len(h)) for h in held]
            slots = cache.slots
            cache.truncate(keep)
            held = [h[:k] for h, k in zip(held, keep, strict=True)]
            compacted += cache.slots < slots - 4 and cache.slots == max(map(len, held))
            if step % 13 == 12 and len(held) > 2:
                drop = rng.randrange(len(held))
                keep_rows = [i for i in range(len(held)) if i != drop]
                cache.select(keep_rows)
                held = [held[i] for i in keep_rows]
            assert cache.lengths == [len(h) for h in held]
            assert cache.valid.sum(1).tolist() == cache.lengths
        assert compacted > 0, "the test needs compactions"


# --- greedy equivalence ----------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 3, 5])
def test_greedy_batch_equals_baseline_and_batch_one(target, draft, k):
    """Greedy speculative output at batch N == the baseline at batch N == transformers
    `generate` one prompt at a time, for both drafters and ragged prompts."""
    prompts = ragged_prompts(7)
    reference = [hf_greedy(target, p, 30) for p in prompts]
    engines = {
        "baseline": Engine(target, VOCAB, GREEDY),
        "ngram": Engine(target, VOCAB, GREEDY, get_strategy("greedy"),
                        NgramDrafter(min_ngram=1), k),
        "model": Engine(target, VOCAB, GREEDY, get_strategy("greedy"),
                        DraftModelDrafter(DraftContext(GREEDY, VOCAB, draft)), k),
    }  # fmt: skip
    for size in (2, 3, 7):
        for name, engine in engines.items():
            assert in_groups(engine, prompts, 30, size) == reference, (name, size)


def test_rows_leave_at_eos_and_budget(target, draft):
    """Rows stop at their own EOS; a finished row takes part in no later forward pass."""
    prompts = ragged_prompts(6)
    free = [hf_greedy(target, p, 24) for p in prompts]
    eos = free[0][5]  # an EOS the first row meets early; other rows meet it at other times
    reference = [hf_greedy(target, p, 24, eos=eos) for p in prompts]
    assert len({len(r) for r in reference}) > 1
    for drafter in (None, NgramDrafter(min_ngram=1),
                    DraftModelDrafter(DraftContext(GREEDY, VOCAB, draft))):
        strategy = None if drafter is None else get_strategy("greedy")
        engine = Engine(target, VOCAB, GREEDY, strategy, drafter, 3, eos_ids=(eos,))
        outputs, passes = run_batch(engine, prompts, 24)
        assert outputs == reference
        if drafter is None:  # one pass per token: nothing computed after a row's EOS
            assert passes == [len(r) for r in reference]


def test_self_draft_batch_accepts_everything(target):
    prompts = ragged_prompts(4)
    engine = Engine(target, VOCAB, GREEDY, get_strategy("greedy"),
                    DraftModelDrafter(DraftContext(GREEDY, VOCAB, target)), 4)
    outputs = [[] for _ in prompts]
    for records in engine.generate_batch(prompts, 21, [0, 1, 2, 3]):
        for i, step in records.items():
            outputs[i] += step.tokens
            assert step.prefill or step.accepted == step.drafted == 4
    assert outputs == [hf_greedy(target, p, 21) for p in prompts]


def test_draft_cache_holds_only_committed_tokens_per_row(target, draft):
    """Whenever the batched draft model starts drafting, each row's cache holds a prefix of
    that row's committed tokens (never its pending one), and outputs equal `generate`'s."""
    drafter = CheckedDraftModel(DraftContext(GREEDY, VOCAB, draft))
    engine = Engine(target, VOCAB, GREEDY, get_strategy("greedy"), drafter, 3)
    prompts = ragged_prompts(5)
    outputs, _ = run_batch(engine, prompts, 40)
    assert drafter.checks > 5
    assert outputs == [hf_greedy(target, p, 40) for p in prompts]


def test_bad_batches_are_refused(target):
    engine = Engine(target, VOCAB, GREEDY)
    for prompts, seeds in (([[1, 2], []], [0, 1]), ([[1, 2]], [0, 1]), ([], [])):
        with pytest.raises(ValueError):
            next(engine.generate_batch(prompts, 4, seeds))


# --- randomness per row ----------------------------------------------------------------------

@pytest.mark.parametrize("strategy", ["sps", "cactus"])
def test_row_tokens_do_not_depend_on_neighbours(target, draft, strategy):
    """Sampling at T=1: a row's tokens are those of its prompt and seed decoded alone, whatever
    its neighbours and its position in the batch."""
    sampling = SamplingConfig(temperature=1.0)
    prompts = ragged_prompts(6)

    def engine(kind: str) -> Engine:
        drafter = (NgramDrafter(min_ngram=1) if kind == "ngram"
                   else DraftModelDrafter(DraftContext(sampling, VOCAB, draft)))  # fmt: skip
        return Engine(target, VOCAB, sampling, get_strategy(strategy), drafter, 3)

    for kind in ("ngram", "model"):
        alone = [run_batch(engine(kind), [p], 20, [s])[0][0] for s, p in enumerate(prompts)]
        order = [4, 0, 5, 2, 1, 3]
        mixed = run_batch(engine(kind), [prompts[i] for i in order], 20, order)[0]
        assert [mixed[order.index(i)] for i in range(6)] == alone
        pairs = run_batch(engine(kind), [prompts[1], prompts[3]], 20, [1, 3])[0]
        assert pairs == [alone[1], alone[3]]


# --- the target law per row at batch > 1 -----------------------------------------------------

@pytest.mark.parametrize("drafter_kind,k,backend",
                         [("model", 3, "torch"), ("ngram", 2, "torch"), ("model", 1, "cpu")])
def test_sps_batch_rows_sample_the_target_law(drafter_kind, k, backend):
    """SpS at T=1 with 2 prompts of different lengths, 2000 rows each, interleaved in one
    batch: per prompt, the first 3 tokens of its rows follow the target's exact law
    (chi-square p > 1e-6, fixed seeds)."""
    vocab, m, n = 4, 3, 2000
    target, draft = tiny_lm(vocab, seed=3), tiny_lm(vocab, seed=4, layers=1, hidden=16)
    for model in (target, draft):
        model.lm_head.weight.data *= 0.15
    prompts = [[0, 1, 2, 3, 1, 2], [3, 1, 3, 1]]
    sampling = SamplingConfig(temperature=1.0)
    drafter = (DraftModelDrafter(DraftContext(sampling, vocab, draft))
               if drafter_kind == "model" else NgramDrafter(min_ngram=1))  # fmt: skip
    engine = Engine(target, vocab, sampling, get_strategy("sps", backend=backend), drafter, k)
    batch = [prompts[i % 2] for i in range(2 * n)]
    outputs, _ = run_batch(engine, batch, m, seeds=list(range(2 * n)))
    for which, prompt in enumerate(prompts):
        law = exact_law(target, prompt, m, vocab)
        counts = dict.fromkeys(law, 0)
        for out in outputs[which::2]:
            counts[tuple(out)] += 1
        assert law_pvalue(law, counts) > 1e-6
