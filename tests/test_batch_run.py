"""`specbench run --batch-size N` through the real CLI in subprocesses: bad values, the config
round trip, greedy records equal to the baseline's at the same batch size, results rows and the
per-request latency view, multi-turn prompts, and a failing prompt inside a batch. Tiny
random-weight models, nothing downloaded.

Run: .venv/bin/python -m pytest tests/test_batch_run.py -q
"""

from __future__ import annotations

import json

import pytest
from conftest import run_cli
from test_cli import assert_bad_input

from specbench_cli.tiny import build_tiny_model


def read_records(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("value", ["0", "-2", "x"])
def test_bad_batch_size_exits_2(value, tmp_path):
    result = run_cli("run", "--batch-size", value, "--output", str(tmp_path / "o"))
    if value == "x":  # not an integer: the CLI parser's own usage error, also exit 2
        assert result.returncode == 2 and "Traceback" not in result.stderr
    else:
        assert_bad_input(result, "--batch-size")


@pytest.mark.parametrize("args", [["-s", "rrs"], ["--temperature", "0", "--drafter",
                                                  "ngram:branches=2", "-s", "greedy"]])
def test_tree_rules_need_batch_size_1(args, tmp_path):
    result = run_cli("run", "--batch-size", "2", *args, "--output", str(tmp_path / "o"))
    assert_bad_input(result, "tree strategies decode one sequence at a time")


def test_batch_size_in_config(tmp_path):
    first = run_cli("run", "--batch-size", "4", "--print-config")
    assert first.returncode == 0 and "batch_size: 4" in first.stdout
    saved = tmp_path / "run.yaml"
    saved.write_text(first.stdout)
    assert run_cli("run", "--config", str(saved), "--print-config").stdout == first.stdout
    saved.write_text("batch_size: 0\n")
    assert_bad_input(run_cli("run", "--config", str(saved), "--print-config"), "--batch-size")


def test_greedy_batch_records_equal_baseline(tmp_path, tiny_target, tiny_draft):
    """Done-when of batching: greedy records identical to the baseline's of the same run, rows
    with batch_size, groups in suite order (the last one smaller), the same groups for every
    contender, and two-turn prompts batched turn by turn."""
    suite = tmp_path / "s.jsonl"
    lines = [{"id": f"p{i}", "prompt": " ".join(f"w{(i * j) % 50}" for j in range(3 + i % 6))}
             for i in range(6)]  # fmt: skip
    lines += [{"id": "chat", "turns": ["w1 w2 w3 w1 w2", "w4 w5 w4 w5"], "reference": "w1"}]
    suite.write_text("".join(json.dumps(line) + "\n" for line in lines))
    for drafter, extra in (("ngram:min_ngram=1", []), ("model", ["--draft", str(tiny_draft)])):
        out = tmp_path / drafter.split(":")[0]
        result = run_cli("run", "--target", str(tiny_target), *extra, "--drafter", drafter,
                         "--suite", str(suite), "--batch-size", "4", "--temperature", "0",
                         "--strategy", "greedy", "--strategy", "sps", "--max-new-tokens", "20",
                         "--k", "3", "--output", str(out))  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "batch size 4" in result.stdout
        records = read_records(out)
        assert all(r["status"] == "ok" for r in records) and len(records) == 7 * 3
        by = {(r["strategy"], r["prompt_id"]): r for r in records}
        for r in records:
            assert r["output_token_ids"] == by[("baseline", r["prompt_id"])]["output_token_ids"]
            assert r["batch_size"] == 4
            assert (r["batch_index"], r["batch_rows"]) == ((0, 4) if r["prompt_id"] in
                                                           ("p0", "p1", "p2", "p3") else (1, 3))
        assert len(by[("greedy", "chat")]["output_text"]) == 2
        assert sum(r["accepted_lengths"] and sum(r["accepted_lengths"]) > 0
                   for r in records if r["strategy"] == "greedy") > 0  # fmt: skip
        for label in ("baseline", "greedy"):
            group = [r for r in records if r["strategy"] == label and r["batch_index"] == 0]
            walls = {round(r["batch_share_s"], 12) for r in group}
            assert len(walls) == 1  # one turn, four rows: an even split of one wall time
            assert max(r["wall_s"] for r in group) == pytest.approx(4 * walls.pop())
        rows = json.loads((out / "results.json").read_text())["results"]
        assert {r["batch_size"] for r in rows} == {4}
        for row in rows:
            assert 0 < row["time_per_token_median_s"] <= row["time_per_token_p90_s"]
            shares = sum(r["batch_share_s"] for r in records if r["strategy"] == row["strategy"])
            tokens = sum(r["new_tokens"] for r in records if r["strategy"] == row["strategy"])
            assert row["tokens_per_second"] == pytest.approx(tokens / shares)


def test_failing_prompt_in_a_batch(tmp_path):
    """A prompt that crashes the model fails alone; its batch neighbours are decoded again as a
    smaller batch and keep their records."""
    broken = build_tiny_model(tmp_path / "broken", model_vocab=30)  # ids past 29 crash
    suite = tmp_path / "s.jsonl"
    suite.write_text('{"id": "ok1", "prompt": "w1 w2 w3"}\n{"id": "bad", "prompt": "w1 w40"}\n'
                     '{"id": "ok2", "prompt": "w4 w5 w6"}\n{"id": "ok3", "prompt": "w7 w8"}\n')
    out = tmp_path / "run"
    result = run_cli("run", "--target", str(broken), "--suite", str(suite), "--strategy", "sps",
                     "--max-new-tokens", "8", "--batch-size", "3", "--output", str(out))
    assert result.returncode == 0, result.stderr
    records = {(r["prompt_id"], r["strategy"]): r for r in read_records(out)}
    assert len(records) == 8
    for label in ("baseline", "sps"):
        assert records[("bad", label)]["status"] == "failed" and records[("bad", label)]["error"]
        for pid in ("ok1", "ok2", "ok3"):
            assert records[(pid, label)]["status"] == "ok"
        assert records[("ok1", label)]["batch_rows"] == records[("ok2", label)]["batch_rows"] == 2
    rows = json.loads((out / "results.json").read_text())["results"]
    assert {r["strategy"]: (r["num_prompts"], r["num_failed"]) for r in rows}["sps"] == (3, 1)
