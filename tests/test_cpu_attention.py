"""Grouped-query attention without the KV copy (`cpu_attention.py`): the same attention as
transformers' `sdpa` function, installed only where it applies, and every engine (chain, tree,
ragged batch) on it still emits transformers' greedy tokens computed without it."""

from __future__ import annotations

import copy

import torch
from test_batch import ragged_prompts, run_batch
from test_engine import hf_greedy, prompts, tiny_lm
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from specbench_cli import cpu_attention
from specbench_cli.cpu_attention import gqa_sdpa, use_gqa_sdpa
from specbench_cli.drafters.ngram import NgramDrafter
from specbench_cli.drafters.ngram_tree import NgramTreeDrafter
from specbench_cli.engine import Engine
from specbench_cli.sampling import SamplingConfig
from specbench_cli.strategies import get_strategy
from specbench_cli.tree_engine import TreeEngine

GREEDY = SamplingConfig(temperature=0.0)


class Layer(torch.nn.Module):
    num_key_value_groups = 3
    is_causal = True


def test_gqa_sdpa_computes_transformers_sdpa() -> None:
    """Masked multi-token queries (the path that changes) and one-token or unmasked ones (handed
    to transformers), with and without a scale."""
    g = torch.Generator().manual_seed(0)
    layer = Layer()
    for q_len, kv_len, masked in ((5, 40, True), (1, 40, True), (7, 7, False), (3, 19, True)):
        q = torch.randn(2, 6, q_len, 16, generator=g)
        k, v = (torch.randn(2, 2, kv_len, 16, generator=g) for _ in range(2))
        mask = None
        if masked:  # causal over the cache, one padded slot in the second row
            mask = torch.ones(2, 1, q_len, kv_len, dtype=torch.bool).tril(kv_len - q_len)
            mask[1, :, :, 0] = False
        for scaling in (None, 0.3):
            got, _ = gqa_sdpa(layer, q, k, v, mask, scaling=scaling)
            want, _ = sdpa_attention_forward(layer, q, k, v, mask, scaling=scaling)
            assert got.shape == want.shape == (2, q_len, 6, 16)
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_installed_only_on_cpu_sdpa_models_and_recorded(monkeypatch) -> None:
    model = tiny_lm(16, seed=0)
    assert cpu_attention.mode(model) == "sdpa"
    assert use_gqa_sdpa(model)
    assert cpu_attention.mode(model) == cpu_attention.NAME
    eager = tiny_lm(16, seed=0)
    eager.set_attn_implementation("eager")
    assert not use_gqa_sdpa(eager) and cpu_attention.mode(eager) == "eager"
    monkeypatch.setenv("SPECBENCH_CPU_ATTENTION", "off")
    assert not use_gqa_sdpa(tiny_lm(16, seed=0))


def test_engines_on_gqa_sdpa_emit_generate_s_tokens() -> None:
    """References come from an untouched copy of the model (transformers' own attention); the
    chain engine, the tree engine and ragged batches (padding masks) run on `gqa_sdpa`."""
    plain = tiny_lm(16, seed=0)
    model = copy.deepcopy(plain)
    assert use_gqa_sdpa(model)
    for prompt in prompts(3):
        ref = hf_greedy(plain, prompt, 40)
        chain = Engine(model, 16, GREEDY, get_strategy("greedy"), NgramDrafter(min_ngram=1), 4)
        tree = TreeEngine(model, 16, GREEDY, get_strategy("greedy"),
                          NgramTreeDrafter(min_ngram=1, branches=3), 4)  # fmt: skip
        for engine in (chain, tree):
            tokens = [t for step in engine.generate(prompt, 40, seed=0) for t in step.tokens]
            assert tokens == ref, type(engine).__name__
    batch = ragged_prompts(5)
    engine = Engine(model, 16, GREEDY, get_strategy("greedy"), NgramDrafter(min_ngram=1), 3)
    assert run_batch(engine, batch, 24)[0] == [hf_greedy(plain, p, 24) for p in batch]
