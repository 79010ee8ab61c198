"""The decoding loop on tiny random-weight models: greedy equivalence, KV rollback, EOS and
budget handling, and the exact law of the first tokens under sampling (docs/engine.md).

Run: .venv/bin/python -m pytest tests/test_engine.py -q
"""

from __future__ import annotations

import itertools

import pytest
import torch
from scipy import stats
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from specbench_cli.drafters import DraftContext
from specbench_cli.drafters.draft_model import DraftModelDrafter
from specbench_cli.drafters.ngram import NgramDrafter
from specbench_cli.engine import Engine
from specbench_cli.kvcache import cache_argument, crop_to
from specbench_cli.sampling import SamplingConfig
from specbench_cli.strategies import get_strategy

GREEDY = SamplingConfig(temperature=0.0)


def tiny_lm(vocab: int, seed: int, layers: int = 2, hidden: int = 32) -> LlamaForCausalLM:
    # large init so logits are far apart: near-ties would test float noise, not the engine
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      initializer_range=0.5, max_position_embeddings=256)
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="module")
def target():
    return tiny_lm(16, seed=0)


@pytest.fixture(scope="module")
def draft():
    return tiny_lm(16, seed=1, layers=1, hidden=16)


def run_engine(engine: Engine, prompt: list[int], n: int, seed: int = 0):
    tokens, steps = [], []
    for step in engine.generate(prompt, n, seed):
        tokens += step.tokens
        steps.append(step)
    return tokens, steps


def hf_greedy(model, prompt: list[int], n: int, eos: int | None = None) -> list[int]:
    out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt),
                         dtype=torch.long), do_sample=False, max_new_tokens=n,
                         eos_token_id=eos, pad_token_id=eos if eos is not None else 0)
    return out[0, len(prompt):].tolist()


def prompts(count: int, vocab: int = 16, length: int = 10):
    g = torch.Generator().manual_seed(123)
    return [torch.randint(0, vocab, (length,), generator=g).tolist() for _ in range(count)]


@pytest.mark.parametrize("k", [1, 3, 5])
def test_greedy_speculative_equals_generate(target, draft, k):
    for prompt in prompts(6):
        ref = hf_greedy(target, prompt, 40)
        baseline = Engine(target, 16, GREEDY)
        ngram = Engine(target, 16, GREEDY, get_strategy("greedy"), NgramDrafter(min_ngram=1), k)
        model = Engine(target, 16, GREEDY, get_strategy("greedy"),
                       DraftModelDrafter(DraftContext(GREEDY, 16, draft)), k)
        for engine in (baseline, ngram, model):
            assert run_engine(engine, prompt, 40)[0] == ref


def test_self_draft_accepts_everything_and_rolls_back_nothing(target):
    # the target drafting for itself under greedy: every draft accepted, k+1 tokens per step
    engine = Engine(target, 16, GREEDY, get_strategy("greedy"),
                    DraftModelDrafter(DraftContext(GREEDY, 16, target)), 4)
    prompt = prompts(1)[0]
    tokens, steps = run_engine(engine, prompt, 41)
    assert tokens == hf_greedy(target, prompt, 41)
    assert all(s.accepted == s.drafted == 4 for s in steps[1:])
    assert len(steps) == 1 + 40 // 5


class CheckedDraftModel(DraftModelDrafter):
    """Checks the draft-cache invariant at the moment drafting starts (after the lazy sync)."""

    checks = 0

    def _sync_cache(self, contexts):
        super()._sync_cache(contexts)
        for cached, context in zip(self.cached, contexts, strict=True):
            assert len(cached) <= len(context) - 1
            assert cached == context[: len(cached)]
        assert self.cache.lengths == [len(cached) for cached in self.cached]
        self.checks += 1


def test_rejections_roll_back_both_caches(target, draft):
    """Target cache = committed tokens but the pending one after every step; the draft cache
    holds only committed tokens whenever drafting starts."""
    drafter = CheckedDraftModel(DraftContext(GREEDY, 16, draft))
    engine = Engine(target, 16, GREEDY, get_strategy("greedy"), drafter, 3)
    prompt = prompts(1)[0]
    context = list(prompt)
    rejected = 0
    for step in engine.generate(prompt, 60, 0):
        context += step.tokens
        rejected += step.drafted - step.accepted
    assert rejected > 0, "the test needs rejections to exercise rollback"
    assert drafter.checks > 5
    assert context[len(prompt):] == hf_greedy(target, prompt, 60)


def test_crop_to_keeps_prefix(target):
    cache = DynamicCache()
    with torch.no_grad():
        target(input_ids=torch.tensor([[1, 2, 3, 4, 5]]), use_cache=True,
               **{cache_argument(target): cache})
    crop_to(cache, 3)
    assert cache.get_seq_length() == 3
    crop_to(cache, 7)  # never grows
    assert cache.get_seq_length() == 3


def test_eos_and_budget(target, draft):
    prompt = prompts(1)[0]
    free = hf_greedy(target, prompt, 30)
    eos = free[7]  # declare the 8th greedy token an EOS: generation must stop right after it
    ref = hf_greedy(target, prompt, 30, eos=eos)
    assert ref[-1] == eos and len(ref) <= 8
    for drafter in (NgramDrafter(min_ngram=1),
                    DraftModelDrafter(DraftContext(GREEDY, 16, draft))):
        engine = Engine(target, 16, GREEDY, get_strategy("greedy"), drafter, 4, eos_ids=(eos,))
        assert run_engine(engine, prompt, 30)[0] == ref
    for budget in (1, 2, 5, 13):
        engine = Engine(target, 16, GREEDY, get_strategy("greedy"),
                        DraftModelDrafter(DraftContext(GREEDY, 16, target)), 4)
        tokens, steps = run_engine(engine, prompt, budget)
        assert tokens == free[:budget]
        assert all(s.drafted <= 4 for s in steps)


def test_ngram_drafter_proposes_earliest_continuation():
    d = NgramDrafter(max_ngram=3, min_ngram=1)
    assert d.propose([5, 6, 7, 9, 5, 6], 3).tokens == [7, 9, 5]
    d = NgramDrafter(max_ngram=3, min_ngram=1)
    assert d.propose([1, 2, 3], 4).tokens == []  # no earlier occurrence of any tail n-gram
    d = NgramDrafter(max_ngram=2, min_ngram=1)
    ctx = [1, 2, 3, 4, 2, 3, 9, 3]
    assert d.propose(ctx, 2).tokens == [4, 2]  # 2-gram (9 3) unseen; 1-gram (3) first ended at 3
    ctx += [4, 2, 3]
    assert d.propose(ctx, 5).tokens == [4, 2, 3, 9, 3]  # incremental index, same answer as rescan


def exact_law(model, prompt: list[int], m: int, vocab: int) -> dict[tuple[int, ...], float]:
    """P(y_1..y_m) = prod_t q(y_t | prompt, y_<t) by enumerating all V^m continuations."""
    law = {}
    with torch.no_grad():
        for seq in itertools.product(range(vocab), repeat=m - 1):
            logits = model(input_ids=torch.tensor([prompt + list(seq)])).logits[0]
            probs = logits.float().softmax(-1)[len(prompt) - 1:]
            prefix = 1.0
            for t, y in enumerate(seq):
                prefix *= float(probs[t, y])
            for y in range(vocab):
                law[(*seq, y)] = prefix * float(probs[m - 1, y])
    return law


def law_pvalue(law: dict[tuple[int, ...], float], counts: dict[tuple[int, ...], int]) -> float:
    """Chi-square p-value of observed sequence counts against an exact law."""
    keys = sorted(law)
    n = sum(counts.values())
    total = sum(law.values())  # 1 up to float32 rounding
    expected = [law[key] / total * n for key in keys]
    observed = [counts[key] for key in keys]
    # merge small-expectation bins into one so the chi-square approximation holds
    big = [i for i, e in enumerate(expected) if e >= 5]
    small = [i for i, e in enumerate(expected) if e < 5]
    exp = [expected[i] for i in big] + ([sum(expected[i] for i in small)] if small else [])
    obs = [observed[i] for i in big] + ([sum(observed[i] for i in small)] if small else [])
    return stats.chisquare(obs, exp).pvalue


@pytest.mark.parametrize("drafter_kind,k,backend",
                         [("model", 1, "torch"), ("model", 3, "torch"), ("ngram", 2, "torch"),
                          ("model", 3, "cpu")])
def test_sps_engine_samples_the_target_law(drafter_kind, k, backend):
    """Whole engine (drafting, caches, bonus, catch-up) under SpS at T=1: the first 3 tokens
    follow the target's exact law (chi-square, p > 1e-6; fixed seeds), on the reference and on
    the CPU kernel (which also turns the logits into laws itself)."""
    vocab, m, n = 4, 3, 3000
    target, draft = tiny_lm(vocab, seed=3), tiny_lm(vocab, seed=4, layers=1, hidden=16)
    # soften the models so every continuation has mass and drafts are often rejected
    for model in (target, draft):
        model.lm_head.weight.data *= 0.15
    prompt = [0, 1, 2, 3, 1, 2]  # the 1-gram and 2-gram tails recur, so n-gram drafts happen
    law = exact_law(target, prompt, m, vocab)
    sampling = SamplingConfig(temperature=1.0)
    counts = dict.fromkeys(law, 0)
    for seed in range(n):
        drafter = (DraftModelDrafter(DraftContext(sampling, vocab, draft))
                   if drafter_kind == "model" else NgramDrafter(min_ngram=1))
        engine = Engine(target, vocab, sampling, get_strategy("sps", backend=backend), drafter, k)
        tokens, _ = run_engine(engine, prompt, m, seed=seed)
        counts[tuple(tokens)] += 1
    assert law_pvalue(law, counts) > 1e-6
