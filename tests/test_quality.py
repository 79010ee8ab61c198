"""Scorers on hand-made cases with known answers, and HumanEval checks.

Run: .venv/bin/python -m pytest tests/test_quality.py -q
"""

from __future__ import annotations

import pytest

from specbench_cli.quality import SCORERS, get_scorer, score_outputs
from specbench_cli.quality.code import check_completion, extract_completion
from specbench_cli.quality.scorers import gold_number, last_number, normalize_answer
from specbench_cli.suites import Prompt, load_suite


def _p(*refs: str, category: str | None = None, **extra) -> Prompt:
    return Prompt("p", ("question",), refs[0] if refs else None, tuple(refs), category, extra)


# --------------------------------------------------------------------------- text scorers


def test_rouge_l_known_values():
    rouge = get_scorer("rouge")
    assert rouge(_p("the cat sat on the mat"), ["the cat sat on the mat"]) == {"rougeL": 1.0}
    assert rouge(_p("the cat sat on the mat"), ["dogs bark loudly"]) == {"rougeL": 0.0}
    # LCS "the cat sat" = 3 tokens: precision 3/3, recall 3/6, F1 = 2/3
    assert rouge(_p("the cat sat on the mat"), ["the cat sat"])["rougeL"] == pytest.approx(2 / 3)
    # best of several references; only the last turn's answer counts
    assert rouge(_p("dogs bark", "the cat sat"), ["dogs bark", "the cat sat"])["rougeL"] == 1.0
    assert rouge(_p(), ["anything"]) == {}


def test_translation_chrf_and_bleu():
    score = get_scorer("translation")
    perfect = score(_p("The museum is closed on Mondays."), ["The museum is closed on Mondays."])
    assert perfect == {"chrf": pytest.approx(100.0), "bleu": pytest.approx(100.0)}
    assert score(_p("The museum is closed on Mondays."), [""]) == {"chrf": 0.0, "bleu": 0.0}
    partial = score(_p("The museum is closed on Mondays."), ["The museum is open on Sundays."])
    assert 0.0 < partial["bleu"] < 100.0 and 0.0 < partial["chrf"] < 100.0
    two_refs = score(_p("I forgot my key.", "I left my key behind."), ["I left my key behind."])
    assert two_refs["bleu"] == pytest.approx(100.0)


def test_normalisation_and_qa_exact_match():
    assert normalize_answer("The  Pacific Ocean!") == "pacific ocean"
    assert normalize_answer("An apple, a day.") == "apple day"
    qa = get_scorer("qa")
    gold = _p("Pacific Ocean", "Pacific")
    assert qa(gold, ["the Pacific Ocean."]) == {"exact_match": 1.0, "contains": 1.0}
    assert qa(gold, ["PACIFIC"]) == {"exact_match": 1.0, "contains": 1.0}
    assert qa(gold, ["It is the Pacific Ocean."]) == {"exact_match": 0.0, "contains": 1.0}
    assert qa(gold, ["Atlantic"]) == {"exact_match": 0.0, "contains": 0.0}
    assert qa(_p("Nile"), ["senile"])["contains"] == 0.0  # whole words only


def test_rag_containment():
    rag = get_scorer("rag")
    gold = _p("harbour green", "harbor green")
    assert rag(gold, ["It is painted Harbor Green."]) == {"contains": 1.0}
    assert rag(gold, ["It is green."]) == {"contains": 0.0}
    assert rag(_p("96,000 kilometres"), ["about 96000 kilometres"]) == {"contains": 1.0}


def test_math_number_extraction():
    assert last_number("It costs $1,250.50 in total.") == 1250.5
    assert last_number("x = -3") == -3
    assert last_number("pages 10-12") == 12
    assert last_number("no digits") is None
    assert gold_number("3+4=<<3+4=7>>7 pens\n#### 7") == 7
    assert gold_number("1,000") == 1000
    math = get_scorer("math")
    gold = _p("72")
    assert math(gold, ["First 8 * 9 = 72.\nThe answer is 72."]) == {"exact_match": 1.0}
    assert math(gold, ["72 apples, minus 2 eaten, leaves 70."]) == {"exact_match": 0.0}
    assert math(gold, ["I don't know."]) == {"exact_match": 0.0}
    assert math(_p("1000"), ["So it is 1,000.00 dollars"]) == {"exact_match": 1.0}


def test_auto_dispatches_on_category():
    auto = get_scorer("auto")
    assert auto(_p("Bonjour", category="translation"), ["Bonjour"])["chrf"] == pytest.approx(100)
    assert auto(_p("#### 5", category="math_reasoning"), ["5"]) == {"exact_match": 1.0}
    assert auto(_p("Oslo", category="rag"), ["in Oslo"]) == {"contains": 1.0}
    assert auto(_p("Area is 3", category="math"), ["3"]) == {}  # MT-Bench math: free-form
    assert auto(_p("x", category=None), ["x"]) == {}


def test_score_outputs_shapes():
    prompts = [_p("a b c"), _p(), _p("d e f")]
    scores = score_outputs("rouge", prompts, [["a b c"], ["zzz"], None])
    assert scores == {"rougeL": [1.0, None, None]}
    assert score_outputs("rouge", prompts[:1], ["a b c"]) == {"rougeL": [1.0]}  # plain string
    assert score_outputs(None, prompts, [[""]] * 3) == {}
    with pytest.raises(ValueError, match="2 answer lists"):
        score_outputs("rouge", prompts, [[""]] * 2)
    with pytest.raises(ValueError, match="unknown scorer 'bleurt'"):
        score_outputs("bleurt", prompts, [[""]] * 3)
    assert {"rouge", "translation", "qa", "rag", "math", "humaneval", "auto"} <= set(SCORERS)


# --------------------------------------------------------------------------- code


def test_extract_completion():
    body = "    return x + 1\n"
    assert extract_completion(body, "f") == body
    fenced = "Sure!\n```python\ndef f(x):\n    return x + 1\n```\nThis adds one."
    assert extract_completion(fenced, "f") == "\ndef f(x):\n    return x + 1\n"
    prose = "Here it is:\nimport math\ndef f(x):\n    return math.floor(x)\n"
    assert extract_completion(prose, "f").startswith("\nimport math\ndef f(x):")
    assert extract_completion("```\n    return 1\n```", "f") == "    return 1\n"


@pytest.fixture(scope="module")
def humaneval():
    return {p.id: p for p in load_suite("humaneval").prompts}


@pytest.mark.parametrize("task_id", ["HumanEval/0", "HumanEval/4", "HumanEval/12", "HumanEval/53"])
def test_humaneval_canonical_passes_and_wrong_fails(humaneval, task_id):
    prompt = humaneval[task_id]
    canonical = prompt.extra["canonical_solution"]
    score = get_scorer("humaneval")
    assert check_completion(prompt.extra, canonical).ok
    assert score(prompt, [canonical]) == {"pass@1": 1.0}
    fenced = f"```python\n{prompt.extra['prompt']}{canonical}```"
    assert score(prompt, ["Here you are.\n" + fenced]) == {"pass@1": 1.0}
    assert score(prompt, ["    return None\n"]) == {"pass@1": 0.0}
    assert score(prompt, ["    pass\n  oops this is not python"]) == {"pass@1": 0.0}


def test_humaneval_hostile_completion_fails(humaneval):
    """A completion that would pass but first tries to fork fails: the sandbox refuses."""
    prompt = humaneval["HumanEval/53"]  # add(x, y)
    hostile = "    import os\n    os.fork()\n    return x + y\n"
    assert get_scorer("humaneval")(prompt, [hostile]) == {"pass@1": 0.0}
    assert get_scorer("humaneval")(prompt, ["    return x + y\n"]) == {"pass@1": 1.0}
