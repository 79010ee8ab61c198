"""`specbench run` through the real CLI in subprocesses: bad input, configuration round trip,
results files, failed prompts and Ctrl-C. Tiny random-weight models, nothing downloaded.

Run: .venv/bin/python -m pytest tests/test_cli.py -q
"""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import interrupt_run, run_cli

from specbench_cli.tiny import build_tiny_model


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("suite") / "tiny.jsonl"
    lines = [{"id": f"p{i}", "prompt": f"w{i} w{i + 1} w{i + 2} w{i} w{i + 1}"} for i in range(4)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def assert_bad_input(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error:"), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.mark.parametrize("args,fragment", [
    (["--k", "0"], "--k"),
    (["--temperature", "-1"], "--temperature"),
    (["--top-p", "0"], "--top-p"),
    (["--top-p", "1.5"], "--top-p"),
    (["--max-new-tokens", "0"], "--max-new-tokens"),
    (["--strategy", "cactus:delta=-1"], "delta"),
    (["--strategy", "nope"], "unknown strategy"),
    (["--strategy", "sps:foo=1"], "foo"),
    (["--drafter", "ngram:max_ngram=x"], "max_ngram"),
    (["--drafter", "model"], "--draft"),
    (["--drafter", "ngram:branches=0"], "branches"),
    (["--drafter", "ngram:branches=3", "--strategy", "sps"], "no --strategy verifies trees"),
    (["--drafter", "ngram:branches=2", "--strategy", "spectr"], "sampled"),
    (["--target", "/nonexistent/model"], "no such file"),
    (["--target", "missing.gguf"], "no such file"),
    (["--target", "someorg/not-cached-model"], "not in the local Hugging Face cache"),
    (["--suite", "/nonexistent/suite.jsonl"], "suite"),
    (["--suite", "no-such-suite"], "no-such-suite"),
])
def test_bad_values_exit_2_before_loading(args, fragment, tmp_path):
    assert_bad_input(run_cli("run", *args, "--output", str(tmp_path / "o"),
                             env={"HF_HUB_OFFLINE": "1"}), fragment)


def test_bad_files(tmp_path, tiny_target):
    bad_suite = tmp_path / "bad.jsonl"
    bad_suite.write_text('{"id": "a", "prompt": "w1"}\n{"id": "b", "prompt": \n')
    assert_bad_input(run_cli("run", "--target", str(tiny_target), "--suite", str(bad_suite)),
                     "bad.jsonl:2")
    not_model = tmp_path / "folder"
    not_model.mkdir()
    assert_bad_input(run_cli("run", "--target", str(not_model)), "config.json")
    text_file = tmp_path / "weights.txt"
    text_file.write_text("x")
    assert_bad_input(run_cli("run", "--draft", str(text_file)), ".gguf")
    assert_bad_input(run_cli("run", "--target", str(tiny_target), "--output", str(text_file)),
                     "is a file")
    bad_yaml = tmp_path / "run.yaml"
    bad_yaml.write_text("k: 4\nstrategy: sps\n")
    assert_bad_input(run_cli("run", "--config", str(bad_yaml)), "unknown setting 'strategy'")


def test_mismatched_vocabularies(tmp_path, tiny_target, suite_file):
    other = build_tiny_model(tmp_path / "other", vocab_words=40, layers=1, hidden=16)
    assert_bad_input(run_cli("run", "--target", str(tiny_target), "--draft", str(other),
                             "--suite", str(suite_file), "--output", str(tmp_path / "o")),
                     "62", "42")


def test_print_config_round_trip(tmp_path):
    first = run_cli("run", "--strategy", "cactus:delta=0.5", "--strategy", "sps", "--k", "3",
                    "--temperature", "0.7", "--seed", "7", "--print-config")
    assert first.returncode == 0, first.stderr
    saved = tmp_path / "run.yaml"
    saved.write_text(first.stdout)
    again = run_cli("run", "--config", str(saved), "--print-config")
    assert again.stdout == first.stdout
    override = run_cli("run", "--config", str(saved), "--k", "5", "--print-config")
    assert "k: 5" in override.stdout and "temperature: 0.7" in override.stdout


def test_run_writes_results_and_records(tmp_path, tiny_target, tiny_draft, suite_file):
    out = tmp_path / "run"
    result = run_cli("run", "--target", str(tiny_target), "--draft", str(tiny_draft),
                     "--suite", str(suite_file), "--strategy", "sps", "--strategy",
                     "cactus:delta=0.5", "--max-new-tokens", "16", "--k", "3",
                     "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "speedup" in result.stdout
    data = json.loads((out / "results.json").read_text())
    assert data["schema_version"] == 1 and data["status"] == "complete"
    assert data["config"]["drafter"] == "model" and data["config"]["k"] == 3
    assert data["config"]["noise_mode"] == "philox-row" and "philox-row noise" in result.stdout
    assert {"torch", "transformers", "device", "cpu"} <= set(data["environment"])
    rows = {r["strategy"]: r for r in data["results"]}
    assert set(rows) == {"baseline", "sps", "cactus:delta=0.5"}
    assert rows["baseline"]["mean_accepted_tokens"] == 1.0 and rows["baseline"]["speedup"] == 1.0
    for label in ("sps", "cactus:delta=0.5"):
        row = rows[label]
        assert row["num_prompts"] == 4 and row["num_failed"] == 0
        assert len(row["per_position_acceptance"]) == 3
        assert row["speedup"] == pytest.approx(
            row["tokens_per_second"] / row["baseline_tokens_per_second"])
        assert 1.0 <= row["mean_accepted_tokens"] <= 4.0
    assert rows["sps"]["divergence"] == {"kl": 0.0, "tv": 0.0}
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 4 * 3
    for r in records:
        assert r["status"] == "ok" and r["new_tokens"] == len(r["output_token_ids"]) <= 16
        assert sum(r["accepted_lengths"]) + len(r["accepted_lengths"]) + 1 == r["new_tokens"] \
            or r["output_token_ids"][-1] == 1  # every step emits accepted + 1 unless EOS/budget
    # the same seed reproduces the same tokens
    again = run_cli("run", "--target", str(tiny_target), "--draft",
                    str(tiny_draft), "--suite", str(suite_file), "--strategy", "sps", "--strategy",
                    "cactus:delta=0.5", "--max-new-tokens", "16", "--k", "3",
                    "--output", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    records_again = [json.loads(line) for line in
                     (tmp_path / "again" / "records.jsonl").read_text().splitlines()]
    assert [r["output_token_ids"] for r in records_again] == [
        r["output_token_ids"] for r in records]
    # an output folder that already holds a run is refused, nothing is overwritten
    assert_bad_input(run_cli("run", "--target", str(tiny_target), "--suite", str(suite_file),
                             "--output", str(out)), "already holds a finished run")


def test_chain_and_tree_contenders_side_by_side(tmp_path, tiny_target, tiny_draft, suite_file):
    out = tmp_path / "trees"
    result = run_cli("run", "--target", str(tiny_target), "--draft", str(tiny_draft),
                     "--drafter", "model:branches=2,depth=3,nodes=6", "--suite", str(suite_file),
                     "-s", "sps", "-s", "block", "-s", "specinfer", "-s", "rrs", "-s", "spectr",
                     "--max-new-tokens", "12", "--k", "3", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert "tree 2x3" in result.stdout and "chain k=3" in result.stdout
    rows = {r["strategy"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    for label in ("sps", "block"):
        assert (rows[label]["kind"], rows[label]["branches"], rows[label]["depth"]) == (
            "chain", 1, 3)
    for label in ("specinfer", "rrs", "spectr"):
        row = rows[label]
        assert (row["kind"], row["branches"], row["depth"], row["nodes"]) == ("tree", 2, 3, 6)
        assert 3 <= row["mean_tree_nodes"] <= 6 and len(row["per_position_acceptance"]) == 3
        assert row["divergence"] == {"kl": 0.0, "tv": 0.0} and row["num_failed"] == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    for r in records:
        if r["strategy"] in ("specinfer", "rrs", "spectr"):
            assert all(d <= 3 and n <= 6 for d, n in zip(r["drafted_lengths"],
                                                         r["drafted_nodes"], strict=True))


def test_strategies_lists_chain_and_tree_rules():
    result = run_cli("strategies")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines()
             if line.startswith("│") and len(line.split()) > 2}  # fmt: skip
    assert {"block", "specinfer", "rrs", "spectr", "greedy"} <= set(lines)
    assert "chain" in lines["block"] and "yes" in lines["block"]
    assert "tree" in lines["rrs"] and "without replacement" in lines["rrs"]
    assert "chain + tree" in lines["greedy"] and "iid" in lines["spectr"]


def test_failed_prompt_is_recorded_and_run_goes_on(tmp_path):
    # the tokenizer knows w0..w59 but the embedding has 30 rows: prompts using w40 crash
    broken = build_tiny_model(tmp_path / "broken", model_vocab=30)
    suite = tmp_path / "s.jsonl"
    suite.write_text('{"id": "ok1", "prompt": "w1 w2 w3"}\n{"id": "bad", "prompt": "w1 w40"}\n'
                     '{"id": "ok2", "prompt": "w4 w5 w6"}\n')
    out = tmp_path / "run"
    result = run_cli("run", "--target", str(broken), "--suite", str(suite), "--strategy", "sps",
                     "--max-new-tokens", "8", "--output", str(out))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    status = {(r["prompt_id"], r["strategy"]): r["status"] for r in records}
    assert status[("bad", "baseline")] == status[("bad", "sps")] == "failed"
    assert status[("ok1", "sps")] == status[("ok2", "sps")] == "ok"
    assert all(r["error"] for r in records if r["status"] == "failed")
    rows = json.loads((out / "results.json").read_text())["results"]
    assert {r["strategy"]: (r["num_prompts"], r["num_failed"]) for r in rows}["sps"] == (2, 1)


def test_ctrl_c_keeps_finished_work(tmp_path, tiny_target):
    suite = tmp_path / "long.jsonl"
    suite.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"w{i % 50} w{i % 7}"}) + "\n"
                             for i in range(200)))
    out = tmp_path / "run"
    ended = interrupt_run("--target", str(tiny_target), "--suite", str(suite),
                          "--max-new-tokens", "64", out=out, after_records=5)
    stdout, stderr = ended.stdout, ended.stderr
    records = out / "records.jsonl"
    assert ended.returncode == 130, stderr
    assert "Traceback" not in stderr
    data = json.loads((out / "results.json").read_text())
    assert data["status"] == "interrupted"
    lines = records.read_text().splitlines()
    finished = [json.loads(line) for line in lines]
    assert len(finished) >= 5
    done = sum(r["num_prompts"] for r in data["results"] if r["category"] is None)
    assert done == len(finished)
    assert "interrupted" in stdout
