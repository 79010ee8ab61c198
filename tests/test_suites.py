"""Suite loading: bundled suites, the native / Spec-Bench / HumanEval formats, headers, errors.

Run: .venv/bin/python -m pytest tests/test_suites.py -q
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from specbench_cli.errors import BadInput
from specbench_cli.quality import SCORERS
from specbench_cli.quality.scorers import normalize_answer, score_outputs
from specbench_cli.suites import Prompt, Suite, bundled_suites, load_suite, suite_dir

TASK_SUITES = ("chat", "translation", "summarization", "qa", "math", "rag", "code")


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _self_answers(suite: Suite) -> list[list[str]]:
    """What a perfect model would answer: the references, in the form the scorer reads."""
    answers = []
    for p in suite.prompts:
        if suite.scorer == "humaneval":
            code = p.extra["prompt"] + p.extra["canonical_solution"]
            answers.append([f"Here is the function:\n```python\n{code}```\nIt passes the tests."])
        else:
            answers.append([p.reference or ""] * len(p.turns))
    return answers


# --------------------------------------------------------------------------- bundled suites


def test_bundled_names_and_folder():
    assert suite_dir() == Path(__file__).resolve().parent.parent / "suites"
    names = bundled_suites()
    assert set(TASK_SUITES) | {"default", "humaneval"} <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("name", [*TASK_SUITES, "default", "humaneval"])
def test_bundled_suite_loads_with_header(name):
    suite = load_suite(name)
    assert suite.name == name
    assert suite.source == f"bundled:{name}"
    assert suite.description
    assert suite.max_new_tokens is not None and suite.max_new_tokens > 0
    assert len({p.id for p in suite.prompts}) == len(suite.prompts)
    if name == "default":
        assert len(suite.prompts) == 6
        assert all(len(p.turns[0].split()) < 120 for p in suite.prompts)
    else:
        assert len(suite.prompts) >= 30
        assert suite.scorer in SCORERS
    if name == "chat":
        assert all(len(p.turns) == 2 for p in suite.prompts)
    if name == "humaneval":
        assert len(suite.prompts) == 164 and suite.scorer == "humaneval"
        assert suite.prompts[0].id == "HumanEval/0"


@pytest.mark.parametrize("name", [s for s in TASK_SUITES if s != "code"])
def test_references_get_a_perfect_score_from_their_own_scorer(name):
    suite = load_suite(name)
    scores = score_outputs(suite.scorer, suite.prompts, _self_answers(suite))
    assert scores, f"{name}: no metric computed"
    for metric, values in scores.items():
        top = 100.0 if metric in ("chrf", "bleu") else 1.0
        assert all(v == pytest.approx(top) for v in values), (name, metric, values)


def test_code_canonical_solutions_pass_their_tests_in_the_sandbox():
    suite = load_suite("code")
    scores = score_outputs("humaneval", suite.prompts, _self_answers(suite), workers=4)
    failed = [p.id for p, v in zip(suite.prompts, scores["pass@1"], strict=True) if v != 1.0]
    assert not failed


def test_code_prompts_fail_with_a_stub_body():
    suite = load_suite("code", limit=5)
    scores = score_outputs("humaneval", suite.prompts, [["    return None\n"]] * 5)
    assert scores["pass@1"] == [0.0] * 5


def test_rag_gold_answer_appears_in_a_passage():
    for p in load_suite("rag").prompts:
        assert normalize_answer(p.references[0]) in normalize_answer(p.turns[0]), p.id


def test_math_gold_answers_match_their_worked_expressions():
    for p in load_suite("math").prompts:
        assert eval(p.extra["solution"]) == pytest.approx(float(p.reference)), p.id  # noqa: S307


def test_template_wraps_the_first_turn_and_keeps_the_raw_stub():
    code = load_suite("code").prompts[0]
    assert code.turns[0].startswith("Complete the following Python function")
    assert code.extra["prompt"] in code.turns[0]
    assert code.extra["prompt"].startswith("def ")
    assert load_suite("qa").prompts[0].turns[0].endswith("in a few words.")


def test_limit_keeps_the_first_prompts_of_each_category(tmp_path):
    rows = [{"question_id": i, "category": ["writing", "qa", "math_reasoning"][i % 3],
             "turns": [f"q{i}"]} for i in range(12)]
    suite = load_suite(str(_write_jsonl(tmp_path / "sb.jsonl", rows)), limit=2)
    assert [p.id for p in suite.prompts] == ["0", "1", "2", "3", "4", "5"]
    assert suite.total_prompts == 12


def test_limit_keeps_the_first_prompts():
    assert [p.id for p in load_suite("math", limit=3).prompts] == ["math-01", "math-02", "math-03"]
    with pytest.raises(BadInput, match="--limit"):
        load_suite("math", limit=0)


# --------------------------------------------------------------------------- file formats


def test_plain_jsonl(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(
        '{"id": "a", "prompt": "Hi"}\n\n{"id": 2, "prompt": "Yo"}\n'
    )  # blank lines skipped
    suite = load_suite(str(path))
    assert suite == Suite(
        "mine", (Prompt("a", ("Hi",)), Prompt("2", ("Yo",))), None, None, str(path),
        total_prompts=2,
    )
    assert load_suite(str(path), limit=1).prompts == (Prompt("a", ("Hi",)),)


def test_plain_jsonl_without_ids_uses_line_numbers(tmp_path):
    path = _write_jsonl(tmp_path / "p.jsonl", [{"prompt": "one"}, {"prompt": "two"}])
    assert [p.id for p in load_suite(str(path)).prompts] == ["1", "2"]


SPEC_BENCH_ROWS = [  # hand-written in Spec-Bench's format (question_id, category, turns, reference)
    {
        "question_id": 1,
        "category": "writing",
        "turns": ["Write a limerick about a cat.", "Now make it about a dog."],
    },
    {
        "question_id": 2,
        "category": "reasoning",
        "turns": ["Is 7 prime?", "Is 9 prime?"],
        "reference": ["Yes.", "No, 9 = 3 x 3."],
    },
    {
        "question_id": 3,
        "category": "translation",
        "turns": ["Translate German to English: Guten Morgen, wie geht es dir?"],
        "reference": ["Good morning, how are you?"],
    },
    {
        "question_id": 4,
        "category": "summarization",
        "turns": ["Summarize: The fair opened."],
        "reference": ["The fair opened."],
    },
    {"question_id": 5, "category": "qa", "turns": ["Who wrote Hamlet?"]},
    {
        "question_id": 6,
        "category": "math_reasoning",
        "turns": ["Ann has 3 pens and buys 4. How many?"],
        "reference": ["She has 3+4=<<3+4=7>>7 pens.\n#### 7"],
    },
    {
        "question_id": 7,
        "category": "rag",
        "turns": ["Passage: Oslo is in Norway. Where is Oslo?"],
        "reference": [["Norway", "in Norway"]],
    },
]


def test_spec_bench_format(tmp_path):
    path = _write_jsonl(tmp_path / "question.jsonl", SPEC_BENCH_ROWS)
    suite = load_suite(str(path))
    assert suite.name == "question" and suite.scorer == "auto" and suite.max_new_tokens is None
    by_id = {p.id: p for p in suite.prompts}
    assert by_id["1"].turns == ("Write a limerick about a cat.", "Now make it about a dog.")
    assert by_id["1"].category == "writing" and by_id["1"].reference is None
    assert by_id["2"].reference == "No, 9 = 3 x 3."  # the last turn's reference
    assert by_id["2"].extra["turn_references"] == ["Yes.", "No, 9 = 3 x 3."]
    assert by_id["3"].references == ("Good morning, how are you?",)
    assert by_id["6"].reference.endswith("#### 7")
    assert by_id["7"].references == ("Norway", "in Norway") and by_id["7"].reference == "Norway"
    assert [p.category for p in suite.prompts] == [r["category"] for r in SPEC_BENCH_ROWS]


def test_spec_bench_auto_scoring_by_category(tmp_path):
    suite = load_suite(str(_write_jsonl(tmp_path / "q.jsonl", SPEC_BENCH_ROWS)))
    answers = [
        ["a", "b"],
        ["x", "y"],
        ["Good morning, how are you?"],
        ["The fair opened."],
        ["Shakespeare"],
        ["So the answer is 7."],
        ["Oslo is the capital of Norway."],
    ]
    scores = score_outputs(suite.scorer, suite.prompts, answers)
    assert scores["chrf"] == [None, None, pytest.approx(100.0), None, None, None, None]
    assert scores["rougeL"] == [None, None, None, pytest.approx(1.0), None, None, None]
    assert scores["exact_match"] == [None, None, None, None, None, 1.0, None]  # qa has no reference
    assert scores["contains"] == [None] * 6 + [1.0]


def test_humaneval_file_path_is_detected(tmp_path):
    row = {
        "task_id": "T/0",
        "prompt": "def f(x):\n",
        "canonical_solution": "    return x\n",
        "test": "def check(c):\n    assert c(1) == 1\n",
        "entry_point": "f",
    }
    path = tmp_path / "mini.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
    suite = load_suite(str(path))
    assert suite.name == "mini" and suite.scorer == "humaneval"
    assert suite.prompts[0].id == "T/0" and suite.prompts[0].extra["entry_point"] == "f"


def test_yaml_header_and_sidecar(tmp_path):
    _write_jsonl(
        tmp_path / "cities.jsonl",
        [{"id": "c1", "prompt": "Capital of Peru?", "references": ["Lima"]}],
    )
    (tmp_path / "cities.yaml").write_text(
        "name: capitals\ndescription: Capitals.\nscorer: qa\nmax_new_tokens: 16\n"
        'template: "Q: {prompt}\\nA:"\n'
    )
    for spec in ("cities.yaml", "cities.jsonl"):  # the header itself, or the data beside it
        suite = load_suite(str(tmp_path / spec))
        assert (suite.name, suite.scorer, suite.max_new_tokens) == ("capitals", "qa", 16)
        assert suite.prompts[0].turns == ("Q: Capital of Peru?\nA:",)
        assert suite.prompts[0].reference == "Lima"


def test_inline_header_line(tmp_path):
    path = _write_jsonl(
        tmp_path / "x.jsonl",
        [
            {"suite": {"name": "sums", "scorer": "math", "max_new_tokens": 40}},
            {"id": "s1", "prompt": "2+2?", "reference": 4},
        ],
    )
    suite = load_suite(str(path))
    assert (suite.name, suite.scorer, suite.max_new_tokens) == ("sums", "math", 40)
    assert suite.prompts[0].reference == "4"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"id": "a", "prompt": "ok"}', '{"id": "b"}'], r"bad\.jsonl:2: missing 'prompt'"),
        (
            ['{"id": "a", "prompt": "ok"}', "", '{"id": "b", "prompt": '],
            r"bad\.jsonl:3: invalid JSON",
        ),
        (['["a", "b"]'], r"bad\.jsonl:1: expected a JSON object"),
        (['{"id": "a", "prompt": "x", "colour": 1}'], r"bad\.jsonl:1: unknown key 'colour'"),
        (
            ['{"id": "a", "prompt": "x"}', '{"id": "a", "prompt": "y"}'],
            r"bad\.jsonl:2: duplicate id 'a'",
        ),
        (['{"id": "a", "turns": []}'], r"bad\.jsonl:1: 'turns' must be a non-empty list"),
        (['{"id": "a", "prompt": ""}'], r"bad\.jsonl:1: 'prompt' must be a non-empty string"),
        (['{"question_id": 1, "category": "qa"}'], r"bad\.jsonl:1: missing 'turns'"),
        (
            ['{"id": "a", "prompt": "x", "test": "def check(c): pass"}'],
            r"bad\.jsonl:1: a code prompt",
        ),
        (["", "  "], r"bad\.jsonl: no prompts"),
        (
            ['{"suite": {"scorer": "bleurt"}}', '{"prompt": "x"}'],
            r"bad\.jsonl:1: unknown scorer 'bleurt'",
        ),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, lines, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BadInput, match=message):
        load_suite(str(path))


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("name: x\nscorer: qa\nprompts: 3\n", r"h\.yaml: unknown key 'prompts'"),
        ("max_new_tokens: 0\n", r"'max_new_tokens' must be a positive integer"),
        ("format: csv\n", r"unknown format 'csv'"),
        ("template: 'no placeholder'\n", r"'template' must contain \{prompt\}"),
        ("data: missing.jsonl\n", r"h\.yaml: data file not found"),
        ("name: [unclosed\n", r"h\.yaml:\d+: invalid YAML"),
    ],
)
def test_malformed_headers(tmp_path, header, message):
    _write_jsonl(tmp_path / "h.jsonl", [{"id": "a", "prompt": "x"}])
    (tmp_path / "h.yaml").write_text(header)
    with pytest.raises(BadInput, match=message):
        load_suite(str(tmp_path / "h.yaml"))


def test_unknown_name_lists_bundled_suites():
    with pytest.raises(BadInput, match=r"unknown suite 'maths'; did you mean 'math'\?.*qa, rag"):
        load_suite("maths")
    with pytest.raises(BadInput, match="suite file not found: nowhere/x.jsonl"):
        load_suite("nowhere/x.jsonl")


# --------------------------------------------------------------------------- the real CLI


def _specbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "specbench"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "specbench_cli"]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_cli_malformed_file_is_one_line_exit_2(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "prompt": "fine"}\n{"id": "b"}\n')
    proc = _specbench("suites", "show", "bad.jsonl", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "Error: bad.jsonl:2: missing 'prompt'"
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [(("nope",), "Error: unknown suite 'nope'"), (("math", "--n", "0"), "Error: --n must be")],
)
def test_cli_bad_arguments_exit_2(tmp_path, args, message):
    proc = _specbench("suites", "show", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(message) and len(proc.stderr.splitlines()) == 1


def test_cli_lists_and_shows(tmp_path):
    listing = _specbench("suites", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    for name in (*TASK_SUITES, "default", "humaneval"):
        assert name in listing.stdout
    shown = _specbench("suites", "show", "chat", "--n", "1", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert (
        "turn 2:" in shown.stdout and "reference:" in shown.stdout and "chat-02" not in shown.stdout
    )
