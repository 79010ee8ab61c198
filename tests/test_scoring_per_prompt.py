"""Per-prompt scorers (`extra.scorer`) through `auto` and `task`, and the default suite scored
with them, so the default run reports one quality delta.

Run: .venv/bin/python -m pytest tests/test_scoring_per_prompt.py -q
"""

from __future__ import annotations

import json

import pytest

from specbench_cli.errors import BadInput
from specbench_cli.quality.scorers import score_auto, score_task
from specbench_cli.suite_records import Prompt
from specbench_cli.suites import load_suite


def test_auto_prefers_the_prompts_own_scorer():
    math = Prompt("m", ("q",), "72", ("72",), "qa", {"scorer": "math"})
    assert score_auto(math, ["They make 72 dollars."]) == {"exact_match": 1.0}
    assert score_auto(math, ["They make 70 dollars."]) == {"exact_match": 0.0}
    qa = Prompt("q", ("q",), "Uhuru Peak", ("Uhuru Peak",), "qa", {})
    assert set(score_auto(qa, ["Uhuru Peak"])) == {"exact_match", "contains"}  # by category


def test_default_suite_scores_four_prompts_each_by_its_task():
    suite = load_suite("default")
    assert suite.scorer == "task" and len(suite.prompts) == 6
    by_id = {p.id: p for p in suite.prompts}
    expected = {"default-summarize": {"rougeL"}, "default-passage-qa": {"contains"},
                "default-arithmetic": {"exact_match"}, "default-translate": {"chrf", "bleu"},
                "default-code": set(), "default-chat": set()}  # fmt: skip
    top = {"rougeL": 1.0, "contains": 1.0, "exact_match": 1.0, "chrf": 100.0, "bleu": 100.0}
    for prompt_id, metrics in expected.items():
        prompt = by_id[prompt_id]
        answer = [prompt.references[0]] if prompt.references else ["x"]
        best = score_auto(prompt, answer)  # the prompt's own scorer
        assert set(best) == metrics
        assert all(best[m] == pytest.approx(top[m]) for m in metrics)  # a reference is perfect
        # `task` reduces it to one 0..1 figure, so the demo's quality column is one line
        assert score_task(prompt, answer) == ({"task_score": pytest.approx(1.0)} if metrics
                                              else {})  # fmt: skip
    wrong = by_id["default-arithmetic"]
    assert score_task(wrong, ["The baker makes 54 dollars."]) == {"task_score": 0.0}
    half = score_task(by_id["default-translate"], ["Le train part."])["task_score"]
    assert 0.0 < half < 1.0  # chrF / 100


@pytest.mark.parametrize("scorer,fragment", [("nope", "unknown scorer 'nope'"),
                                             ("auto", "cannot be 'auto'"),
                                             ("task", "cannot be 'task'")])
def test_bad_prompt_scorer_is_bad_input(tmp_path, scorer, fragment):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"id": "a", "prompt": "p", "references": ["r"],
                                "extra": {"scorer": scorer}}) + "\n")  # fmt: skip
    with pytest.raises(BadInput, match=fragment) as info:
        load_suite(str(path))
    assert "s.jsonl:1" in str(info.value)
