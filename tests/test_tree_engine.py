"""Token trees in the engine on tiny random-weight models (docs/engine.md, "Token trees"): the
tree attention mask against plain decoding for several model families, clear failures for
models that cannot verify trees, greedy tree decoding equal to `generate` token for token, tree
proposals of both drafters, and the exact law of the first tokens under the sampled tree rules.

Run: .venv/bin/python -m pytest tests/test_tree_engine.py -q
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_engine import exact_law, hf_greedy, prompts, run_engine, tiny_lm
from test_strategies_stats import chi_square_pvalue
from transformers import AutoConfig, AutoModelForCausalLM, DynamicCache

from specbench_cli.contenders import tree_shape
from specbench_cli.drafters import DraftContext
from specbench_cli.drafters.draft_model_tree import DraftModelTreeDrafter
from specbench_cli.drafters.ngram_tree import NgramTreeDrafter
from specbench_cli.drafters.suffix import SuffixDrafter
from specbench_cli.drafters.tree import TreeDraft, merge_paths
from specbench_cli.engine import Engine
from specbench_cli.kvcache import cache_argument
from specbench_cli.sampling import SamplingConfig
from specbench_cli.strategies import decodes_trees, get_strategy
from specbench_cli.tree_attention import (
    TreeAttentionUnsupported,
    ancestors,
    check_tree_attention,
    keep_cache_positions,
    tree_forward,
    tree_mask,
)
from specbench_cli.tree_engine import TreeEngine

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: threads only contend
GREEDY = SamplingConfig(temperature=0.0)
SIZES = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
FAMILIES = {  # model_type -> config overrides; every one honours the tree mask
    "llama": {}, "mistral": {"sliding_window": None}, "qwen2": {}, "qwen3": {"head_dim": 8},
    "gemma": {"head_dim": 8}, "granite": {}, "olmo2": {},
    "gpt2": dict(n_embd=32, n_layer=2, n_head=4, vocab_size=64, n_positions=128),
    "gpt_neox": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, vocab_size=64),
}  # fmt: skip


def family_model(kind: str, **overrides) -> torch.nn.Module:
    extra = FAMILIES.get(kind, {})
    values = extra if kind in ("gpt2", "gpt_neox") else {**SIZES, **extra}
    config = AutoConfig.for_model(kind, **{**values, **overrides})
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval()


@torch.inference_mode()
def tree_vs_plain_gap(model, prefix: list[int], tokens: list[int], parents: list[int]) -> float:
    """Largest gap between the tree forward's logits and a plain forward of each node's path."""
    arg = cache_argument(model)
    cache = DynamicCache()
    model(input_ids=torch.tensor([prefix]), use_cache=True, **{arg: cache})
    seen = ancestors(parents)
    depth = [int(seen[i].sum()) for i in range(len(parents))]
    mask = tree_mask(seen, torch.arange(len(tokens)), len(prefix), model.dtype, torch.device("cpu"))
    logits = tree_forward(model, tokens, [len(prefix) - 1 + d for d in depth], mask, cache, arg)
    gap = 0.0
    for i in range(len(tokens)):
        path = [tokens[j] for j in range(len(tokens)) if seen[i, j]]
        plain = model(input_ids=torch.tensor([prefix + path])).logits[0, -1]
        gap = max(gap, float((logits[i] - plain).abs().max()))
    return gap


@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_tree_mask_matches_plain_decoding(kind: str) -> None:
    model = family_model(kind)
    check_tree_attention(model)  # the probe passes
    parents = [-1, 0, 0, 1, 1, 2, 3, -1]  # two roots' worth of branches, depth up to 4
    assert tree_vs_plain_gap(model, [5, 9, 13], [7, 8, 9, 10, 11, 12, 13, 14], parents) < 1e-4


def test_eager_attention_honours_the_mask_too() -> None:
    config = AutoConfig.for_model("llama", **SIZES)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    check_tree_attention(model)
    assert tree_vs_plain_gap(model, [1, 2], [3, 4, 5, 6], [-1, 0, -1, 2]) < 1e-4


class MaskIgnoringLlama(torch.nn.Module):
    """A real Llama behind a forward that drops the custom mask (as some model code would)."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = family_model("llama")
        self.config = self.inner.config

    def forward(self, attention_mask=None, cache=None, **kwargs):
        return self.inner(cache=cache, **kwargs)

    def get_input_embeddings(self):
        return self.inner.get_input_embeddings()

    def get_output_embeddings(self):
        return self.inner.get_output_embeddings()


@pytest.mark.parametrize("model,message", [
    (lambda: family_model("mistral", sliding_window=4), "sliding-window"),
    (lambda: family_model("gemma2", head_dim=8), "sliding-window"),
    (MaskIgnoringLlama, "does not honour a custom 4-D attention mask"),
])  # fmt: skip
def test_models_that_cannot_verify_trees_fail_clearly(model, message: str) -> None:
    with pytest.raises(TreeAttentionUnsupported, match=message):
        check_tree_attention(model())
    with pytest.raises(TreeAttentionUnsupported, match=message):
        TreeEngine(model(), 64, GREEDY, get_strategy("greedy"), NgramTreeDrafter(), 4)


def test_compacted_cache_continues_like_plain_decoding() -> None:
    """Prefix [1 2], tree root 3 with children 4 and 5, 6 under 4; keep the path 3 -> 5: the
    next token sees exactly [1 2 3 5]."""
    model = family_model("llama")
    arg = cache_argument(model)
    cache = DynamicCache()
    with torch.inference_mode():
        model(input_ids=torch.tensor([[1, 2]]), use_cache=True, **{arg: cache})
        mask = tree_mask(ancestors([-1, 0, 0, 1]), torch.arange(4), 2, model.dtype,
                         torch.device("cpu"))  # fmt: skip
        tree_forward(model, [3, 4, 5, 6], [2, 3, 3, 4], mask, cache, arg)
        keep_cache_positions(cache, torch.tensor([0, 1, 2, 4]))
        assert cache.get_seq_length() == 4
        nxt = model(input_ids=torch.tensor([[7]]), use_cache=True, **{arg: cache}).logits[0, -1]
        plain = model(input_ids=torch.tensor([[1, 2, 3, 5, 7]])).logits[0, -1]
    assert float((nxt - plain).abs().max()) < 1e-5


# -- greedy tree decoding == autoregressive greedy -----------------------------------------------


@pytest.fixture(scope="module")
def models():
    """(target, draft): the tiny pair of the chain engine tests."""
    return tiny_lm(16, seed=0), tiny_lm(16, seed=1, layers=1, hidden=16)


def tree_drafters(draft, target):
    return {
        "ngram:branches=1": lambda: NgramTreeDrafter(min_ngram=1),
        "ngram:branches=3": lambda: NgramTreeDrafter(min_ngram=1, branches=3),
        "suffix:branches=3": lambda: SuffixDrafter(branches=3, min_token_prob=0.0),
        "model:2x3/6": lambda: DraftModelTreeDrafter(DraftContext(GREEDY, 16, draft), branches=2,
                                                     depth=3, nodes=6),
        "self:3x4/12": lambda: DraftModelTreeDrafter(DraftContext(GREEDY, 16, target),
                                                     branches=3, depth=4, nodes=12),
    }  # fmt: skip


def test_greedy_tree_decoding_equals_generate(models) -> None:
    """Every drafter under greedy; at temperature 0 specinfer and rrs (one-hot targets) too."""
    target, draft = models
    runs = [(name, "greedy") for name in tree_drafters(draft, target)]
    runs += [("ngram:branches=3", "specinfer"), ("model:2x3/6", "rrs")]
    branched = 0
    for prompt in prompts(3):
        ref = hf_greedy(target, prompt, 40)
        for name, rule in runs:
            make = tree_drafters(draft, target)[name]
            engine = TreeEngine(target, 16, GREEDY, get_strategy(rule), make(), 4)
            tokens, steps = run_engine(engine, prompt, 40)
            assert tokens == ref, (name, rule, prompt)
            assert all(s.accepted <= s.drafted <= 4 and s.nodes >= s.drafted for s in steps[1:])
            if name == "suffix:branches=3":
                branched += sum(s.nodes > s.drafted for s in steps[1:])
    assert branched > 0  # the suffix drafter did propose trees with more than one branch


def test_self_drafted_trees_accept_everything(models) -> None:
    target, _ = models
    drafter = DraftModelTreeDrafter(DraftContext(GREEDY, 16, target), branches=2, depth=4, nodes=7)
    engine = TreeEngine(target, 16, GREEDY, get_strategy("greedy"), drafter, 4)
    prompt = prompts(1)[0]
    tokens, steps = run_engine(engine, prompt, 41)
    assert tokens == hf_greedy(target, prompt, 41)
    assert all(s.accepted == 4 and s.nodes == 7 for s in steps[1:])


def test_one_branch_trees_are_the_chain(models) -> None:
    target, _ = models
    prompt = prompts(1)[0]
    chain = Engine(target, 16, GREEDY, get_strategy("greedy"), NgramTreeDrafter(min_ngram=1), 4)
    tree = TreeEngine(target, 16, GREEDY, get_strategy("greedy"), NgramTreeDrafter(min_ngram=1), 4)
    a, b = run_engine(chain, prompt, 40)[1], run_engine(tree, prompt, 40)[1]
    assert [(s.drafted, s.accepted, s.tokens) for s in a] == [
        (s.drafted, s.accepted, s.tokens) for s in b]


def test_eos_and_budget(models) -> None:
    target, draft = models
    prompt = prompts(1)[0]
    free = hf_greedy(target, prompt, 30)
    eos = free[7]
    ref = hf_greedy(target, prompt, 30, eos=eos)
    for make in tree_drafters(draft, target).values():
        engine = TreeEngine(target, 16, GREEDY, get_strategy("greedy"), make(), 4, eos_ids=(eos,))
        assert run_engine(engine, prompt, 30)[0] == ref
    for budget in (1, 2, 5, 13):
        make = tree_drafters(draft, target)["self:3x4/12"]
        engine = TreeEngine(target, 16, GREEDY, get_strategy("greedy"), make(), 4)
        tokens, steps = run_engine(engine, prompt, budget)
        assert tokens == free[:budget]


# -- drafters proposing trees ------------------------------------------------------------------


def test_ngram_branches_and_merging() -> None:
    d = NgramTreeDrafter(max_ngram=3, min_ngram=1, branches=2)
    ctx = [1, 2, 7, 8, 1, 2, 9, 1, 2]
    assert d.continuations(ctx, 2) == [[7, 8], [9, 1]]
    tree = d.propose_tree(ctx, 2, "iid")
    assert (tree.tokens, tree.parents, tree.probs) == ([7, 9, 8, 1], [-1, -1, 0, 1], None)
    one = NgramTreeDrafter(max_ngram=3, min_ngram=1)
    assert one.propose_tree(ctx, 4, "any").tokens == one.propose(ctx, 4).tokens
    shared = merge_paths([[1, 2, 3], [1, 2, 4], [1, 5]])
    assert shared.tokens == [1, 2, 5, 3, 4] and shared.parents == [-1, 0, 0, 1, 1]
    cut = TreeDraft([1, 2, 5, 3, 4], [-1, 0, 0, 1, 1], None).cut(2, frozenset({5}))
    assert cut.tokens == [1, 2, 5] and cut.parents == [-1, 0, 0]
    assert TreeDraft([1, 2, 3], [-1, 0, 1], None).cut(3, frozenset({2})).tokens == [1, 2]


@pytest.mark.parametrize("scheme", ["iid", "without_replacement", "any"])
def test_draft_model_trees_have_the_shape_asked_for(models, scheme: str) -> None:
    _, draft = models
    sampling = SamplingConfig(temperature=1.0)
    d = DraftModelTreeDrafter(DraftContext(sampling, 16, draft), branches=3, depth=3, nodes=10)
    d.reset(0)
    context = prompts(1)[0]
    for _ in range(20):
        tree = d.propose_tree(context, 3, scheme)
        assert len(tree.tokens) == 10 and tree.max_depth == 3
        assert tree.depth == sorted(tree.depth)  # level order: parents first
        kids: dict[int, list[int]] = {}
        for i, parent in enumerate(tree.parents):
            kids.setdefault(parent, []).append(tree.tokens[i])
        assert max(len(k) for k in kids.values()) <= 3
        if scheme != "iid":
            assert all(len(set(k)) == len(k) for k in kids.values())  # distinct siblings
        assert (tree.probs is None) == (scheme == "any")
        if tree.probs is not None:  # siblings carry their parent's row, and it drew them
            for i, parent in enumerate(tree.parents):
                assert float(tree.probs[i, tree.tokens[i]]) > 0
                j = tree.parents.index(parent)
                assert torch.equal(tree.probs[i], tree.probs[j])
        assert d.tree_cache.get_seq_length() == len(d.tree_cached) == len(context)  # tree dropped
        context = context + [tree.tokens[0]]


def test_tree_pairing_decisions() -> None:
    assert decodes_trees(get_strategy("rrs"), {"branches": 1})
    assert not decodes_trees(get_strategy("greedy"), {"branches": 1})
    assert decodes_trees(get_strategy("greedy"), {"branches": 2})
    assert not decodes_trees(get_strategy("sps"), {"branches": 3})
    assert tree_shape({"branches": 2, "depth": 0, "nodes": 0}, 3) == {
        "kind": "tree", "branches": 2, "depth": 3, "nodes": 14}
    assert tree_shape({"branches": 3, "depth": 4, "nodes": 16}, 9)["nodes"] == 16
    assert tree_shape({"branches": 3, "max_ngram": 3}, 5)["nodes"] == 15


# -- sampled trees keep the target's law ----------------------------------------------------------


@pytest.mark.parametrize("rule,nodes", [("specinfer", 0), ("rrs", 0), ("spectr", 0),
                                        ("rrs", 3)])  # fmt: skip
def test_tree_engine_samples_the_target_law(rule: str, nodes: int) -> None:
    """Whole engine (tree drafting, tree mask, cache compaction, bonus) at T=1: the first 3
    tokens follow the target's exact law (chi-square, p > 1e-6; fixed seeds)."""
    vocab, m, n = 4, 3, 2000
    target, draft = tiny_lm(vocab, seed=3), tiny_lm(vocab, seed=4, layers=1, hidden=16)
    for model in (target, draft):
        model.lm_head.weight.data *= 0.15
    prompt = [0, 1, 2, 3, 1, 2]
    law = exact_law(target, prompt, m, vocab)
    sampling = SamplingConfig(temperature=1.0)
    counts = dict.fromkeys(law, 0)
    accepted = 0
    for seed in range(n):
        drafter = DraftModelTreeDrafter(DraftContext(sampling, vocab, draft), branches=2,
                                        depth=2, nodes=nodes)  # fmt: skip
        engine = TreeEngine(target, vocab, sampling, get_strategy(rule), drafter, 2)
        tokens, steps = run_engine(engine, prompt, m, seed=seed)
        counts[tuple(tokens)] += 1
        accepted += sum(s.accepted for s in steps)
    assert accepted > n // 2  # trees were accepted, so their paths fed the law
    keys = sorted(law)
    observed = np.array([counts[key] for key in keys])
    assert chi_square_pvalue(observed, np.array([law[key] for key in keys])) > 1e-6
