"""What `specbench run` tells a person and a CI log, through the real CLI: progress lines when
stderr is not a terminal, which categories a limited suite kept and scored, records with
truncation, prompt length and per-turn timings, rows with their settings, flags that match the
configuration keys, help without `<bool>` placeholders.

Run: .venv/bin/python -m pytest tests/test_cli_output.py -q
"""

from __future__ import annotations

import json
import re

import pytest
import typer
from conftest import run_cli

from specbench_cli.cli import app
from specbench_cli.config import FIELDS, FLAGS


@pytest.fixture(scope="module")
def logged_run(tiny_target, tmp_path_factory):
    folder = tmp_path_factory.mktemp("logged")
    suite = folder / "s.jsonl"
    suite.write_text('{"id": "one", "prompt": "w1 w2 w3 w1 w2"}\n'
                     '{"id": "two", "turns": ["w4 w5 w4 w5", "w6 w7"]}\n'
                     '{"id": "three", "prompt": "w8 w9"}\n')
    out = folder / "run"
    result = run_cli("run", "--target", str(tiny_target), "--suite", str(suite), "--strategy",
                     "sps", "--max-new-tokens", "12", "--k", "3", "--output", str(out),
                     env={"SPECBENCH_PROGRESS_INTERVAL": "0"})
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    return result, json.loads((out / "results.json").read_text()), records


def test_logs_show_stages_and_progress_with_time_left(logged_run):
    result, _, _ = logged_run
    err = result.stderr
    assert "suite s: 3 prompts; not scored (the suite names no scorer)" in err
    for stage in ("loading target model", "verify backend", "warm-up"):
        assert stage in err
    # 3 prompts x 2 contenders x 3 rounds; the contender order rotates each round
    counts = re.findall(r"^\[\s*(\d+)%\] (\d+)/18, (.*) \| (.*)$", err, re.M)
    assert [int(done) for _, done, _, _ in counts] == list(range(19))
    assert all("elapsed" in detail for _, _, detail, _ in counts)
    assert any("tok/s" in detail and "left" in detail for _, _, detail, _ in counts[1:-1])
    assert [c[3] for c in counts[:6]] == [f"s prompt 1/3 {label} round {r}/3" for label, r in (
        ("baseline", 1), ("sps", 1), ("sps", 2), ("baseline", 2), ("baseline", 3), ("sps", 3))]
    assert counts[-1][3] == "done"
    assert "Loading weights" not in err and "Warning" not in err  # transformers stays quiet


def test_records_carry_truncation_prompt_length_and_turn_timings(logged_run):
    _, _, records = logged_run
    assert len(records) == 6
    for r in records:
        assert len(r["turns"]) == (2 if r["prompt_id"] == "two" else 1)
        assert r["prompt_tokens"] == sum(t["prompt_tokens"] for t in r["turns"]) > 0
        assert r["new_tokens"] == sum(t["new_tokens"] for t in r["turns"])
        assert r["wall_s"] == pytest.approx(sum(t["wall_s"] for t in r["turns"]))
        assert r["ttft_s"] == r["turns"][0]["ttft_s"] > 0
        assert r["max_new_tokens"] == 12
        start = 0
        for t in r["turns"]:  # truncated: the budget of 12 ended the turn, not EOS (id 1)
            tokens = r["output_token_ids"][start:start + t["new_tokens"]]
            start += t["new_tokens"]
            assert t["truncated"] == (len(tokens) == 12 and tokens[-1] != 1)
        assert r["truncated"] == any(t["truncated"] for t in r["turns"])
    assert any(r["truncated"] for r in records)  # a random model seldom stops by itself


def test_rows_carry_their_settings_and_the_interval_method(logged_run):
    _, data, _ = logged_run
    assert data["intervals"]["min_prompts"] == 5 and "Student t" in data["intervals"]["method"]
    for row in data["results"]:
        assert (row["k"], row["max_new_tokens"], row["temperature"]) == (3, 12, 1.0)
        assert row["verify_backend"] == data["environment"]["verify_backend"]
        assert row["target"] == data["config"]["target"]
    sps = next(r for r in data["results"] if r["strategy"] == "sps")
    assert sps["num_paired"] == 3 and sps["speedup_ci"] == []  # 3 prompts: too few


def test_limit_keeps_every_category_and_says_what_is_scored(tiny_target, tmp_path):
    suite = tmp_path / "sb.jsonl"
    rows = [{"question_id": 10 * c + i, "category": category, "turns": [f"w{i} w{c} w{i}"],
             **({"reference": [f"w{i}"]} if category != "writing" else {})}
            for c, category in enumerate(["writing", "summarization", "qa"]) for i in range(3)]
    suite.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    result = run_cli("run", "--target", str(tiny_target), "--suite", str(suite), "--strategy",
                     "sps", "--limit", "1", "--max-new-tokens", "4", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert ("suite sb: 3 prompts of 9 (--limit, per category) in 3 categories (writing 1, "
            "summarization 1, qa 1); scored summarization by rouge, qa by qa; not scored "
            "writing (free-form category, no scorer)") in result.stderr
    data = json.loads((out / "results.json").read_text())
    categories = {r["category"] for r in data["results"] if r["strategy"] == "sps"}
    assert categories == {None, "writing", "summarization", "qa"}


def test_every_setting_has_a_flag_and_every_flag_a_setting():
    run = typer.main.get_command(app).commands["run"]
    options = {opt for param in run.params for opt in param.opts}
    negatives = {opt for param in run.params for opt in param.secondary_opts}
    assert set(FLAGS) == FIELDS
    # what a run does rather than how it is configured: reading a config, printing it, the
    # table width, continuing an earlier run folder (whose own settings it takes)
    actions = {"--config", "--print-config", "--wide", "-s", "--resume"}
    assert set(FLAGS.values()) == options - actions
    assert {"--no-chat-template", "--no-audit", "--no-trust-remote-code"} <= negatives


@pytest.mark.parametrize("command", [[], ["run"], ["compare"], ["kernels", "check"],
                                     ["kernels", "bench"], ["suites", "show"], ["strategies"]])
def test_help_shows_no_bool_placeholders(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0 and "Usage:" in result.stdout
    assert "<bool>" not in result.stdout


def test_kernels_check_reports_progress(tmp_path):
    result = run_cli("kernels", "check", "-s", "sps", "--rows", "1")
    assert result.returncode == 0, result.stderr
    assert "building or loading the compiled kernels" in result.stderr
    assert re.search(r"^\[100%\] 2/2, .* \| done$", result.stderr, re.M)


def test_terminal_progress_shows_stages_counts_and_time_left():
    import io
    import time

    from rich.console import Console

    from specbench_cli.progress import open_progress

    console = Console(file=io.StringIO(), force_terminal=True, width=100, color_system=None)
    with open_progress(console) as progress:
        progress.stage("loading target model default")
        progress.bar.refresh()
        progress.advance(0, 4, "s prompt 1/2 baseline")
        time.sleep(0.05)
        progress.advance(1, 4, "s prompt 1/2 sps", "12.0 tok/s")
        progress.bar.refresh()
    shown = console.file.getvalue()
    assert "loading target model default" in shown and "0/?" not in shown
    assert re.search(r"s prompt 1/2 sps .*1/4, 12.0 tok/s, 0:00 elapsed, ~0:00 left", shown)
