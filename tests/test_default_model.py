"""The embedded default model (SmolLM2-135M-Instruct GGUF) end to end: the real CLI on two
prompts, and greedy speculative decoding equal to transformers `generate` token for token.

The first use converts the GGUF file (~25 s) into the cache; later loads take under a second.
Run: .venv/bin/python -m pytest tests/test_default_model.py -q
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cli

from specbench_cli.contenders import eos_ids
from specbench_cli.drafters.ngram import NgramDrafter
from specbench_cli.engine import Engine
from specbench_cli.models import check_spec, load_model
from specbench_cli.prompts import encode
from specbench_cli.sampling import SamplingConfig
from specbench_cli.strategies import get_strategy

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


def test_greedy_prompt_lookup_matches_generate(default_model):
    m = default_model
    prompts = [
        "Repeat this sentence twice: the quick brown fox jumps over the lazy dog.",
        "Summarize: The library extended its opening hours to 10 pm on weekdays after "
        "students asked for more study space during exams.",
    ]
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
