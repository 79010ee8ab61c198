"""The embedded default model (SmolLM2-135M-Instruct GGUF) end to end: the real CLI on two
prompts, and greedy speculative decoding (chains and token trees) equal to transformers
`generate` token for token.

The first use converts the GGUF file (~25 s) into the cache; later loads take under a second.
Run: .venv/bin/python -m pytest tests/test_default_model.py -q
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cli

from specbench_cli.contenders import eos_ids
from specbench_cli.drafters import DraftContext
from specbench_cli.drafters.draft_model_tree import DraftModelTreeDrafter
from specbench_cli.drafters.ngram import NgramDrafter
from specbench_cli.drafters.ngram_tree import NgramTreeDrafter
from specbench_cli.engine import Engine
from specbench_cli.models import check_spec, load_model
from specbench_cli.prompts import encode
from specbench_cli.sampling import SamplingConfig
from specbench_cli.strategies import get_strategy
from specbench_cli.tree_engine import TreeEngine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_model():
    return load_model(check_spec("default"))


def test_default_run_on_two_prompts(tmp_path):
    out = tmp_path / "run"
    result = run_cli("run", "--limit", "2", "--max-new-tokens", "24", "--output", str(out))
    assert result.returncode == 0, result.stderr
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["target"] == "default" and data["config"]["temperature"] > 0
    rows = {r["strategy"]: r for r in data["results"]}
    assert {"baseline", "sps"} <= set(rows) and any(s.startswith("cactus") for s in rows)
    assert all(r["num_prompts"] == 2 and r["num_failed"] == 0 for r in rows.values())
    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert all(r["output_text"][0].strip() for r in records)  # real text came out


PROMPTS = [
    "Repeat this sentence twice: the quick brown fox jumps over the lazy dog.",
    "Summarize: The library extended its opening hours to 10 pm on weekdays after "
    "students asked for more study space during exams.",
]


def generate_greedy(m, ids: list[int], n: int) -> list[int]:
    out = m.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids),
                           dtype=torch.long), do_sample=False, max_new_tokens=n)  # fmt: skip
    return out[0, len(ids):].tolist()


def test_greedy_token_trees_match_generate(default_model):
    """Tree attention on the real Llama-architecture model: prompt lookup with three branches,
    and the model drafting trees for itself, both equal to `generate`."""
    m = default_model
    greedy = SamplingConfig(temperature=0.0)
    drafters = [lambda: NgramTreeDrafter(branches=3),
                lambda: DraftModelTreeDrafter(DraftContext(greedy, m.vocab_size, m.model),
                                              branches=2, depth=3, nodes=6)]  # fmt: skip
    for text, make in zip(PROMPTS, drafters, strict=True):
        ids = encode(m.tokenizer, [{"role": "user", "content": text}], True)
        ref = generate_greedy(m, ids, 32)
        engine = TreeEngine(m.model, m.vocab_size, greedy, get_strategy("greedy"), make(), 3,
                            eos_ids(m))  # fmt: skip
        out, accepted = [], 0
        for step in engine.generate(ids, 32, seed=0):
            out += step.tokens
            accepted += step.accepted
        assert out == ref
        assert accepted > 0


def test_greedy_prompt_lookup_matches_generate(default_model):
    m = default_model
    prompts = PROMPTS
    greedy = SamplingConfig(temperature=0.0)
    accepted = 0
    for text in prompts:
        ids = encode(m.tokenizer, [{"role": "user", "content": text}], True)
        ref = m.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids),
                               dtype=torch.long), do_sample=False, max_new_tokens=48)
        ref = ref[0, len(ids):].tolist()
        engine = Engine(m.model, m.vocab_size, greedy, get_strategy("greedy"), NgramDrafter(),
                        4, eos_ids(m))
        out = []
        for step in engine.generate(ids, 48, seed=0):
            out += step.tokens
            accepted += step.accepted
        assert out == ref
    assert accepted > 0  # prompt lookup did find drafts to accept
