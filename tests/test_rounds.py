"""Repeated rounds (`--rounds`): balanced contender order, identical tokens in every round (the
suffix drafter's global memory included), median timings with every round kept, a loud failure
when a decoding is not reproducible, timing_noise, compare's noise floor, the machine state a
run records, and bad values.

Run: .venv/bin/python -m pytest tests/test_rounds.py -q
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import run_cli
from test_cli import assert_bad_input
from test_compare import compare, make_run, metric

from specbench_cli.config import RunConfig
from specbench_cli.contenders import Contender
from specbench_cli.drafters import Draft
from specbench_cli.engine import Engine
from specbench_cli.environment import busy_warning, machine_state, pin_threads
from specbench_cli.metrics import timing_noise
from specbench_cli.models import check_spec, load_model
from specbench_cli.progress import NoProgress
from specbench_cli.rounds import merge_rounds, round_order, run_rounds, timing_spread
from specbench_cli.run_folder import RunFolder
from specbench_cli.runner import decode_all
from specbench_cli.sampling import SamplingConfig
from specbench_cli.strategies import get_strategy
from specbench_cli.suites import load_suite

STEPS = ("output_token_ids", "accepted_lengths", "drafted_lengths", "new_tokens")


def read_records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]


def by_key(records: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["prompt_id"], r["strategy"]): r for r in records}


# -- order ------------------------------------------------------------------------------------

def test_round_order_rotates_so_each_contender_takes_each_place():
    assert [round_order(3, r) for r in range(4)] == [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 1, 2]]
    places = {c: {round_order(3, r).index(c) for r in range(3)} for c in range(3)}
    assert places == {0: {0, 1, 2}, 1: {0, 1, 2}, 2: {0, 1, 2}}
    assert round_order(1, 5) == [0]


def test_run_rounds_decodes_in_rotated_order_and_merges_per_contender():
    contenders = [SimpleNamespace(label=name, memory=None) for name in ("base", "a", "b")]
    calls: list[tuple[str, int]] = []

    def decode(c, r):
        calls.append((c.label, r))
        return [{"suite": "s", "prompt_id": "p", "strategy": c.label, "status": "ok",
                 "output_token_ids": [1, 2], "accepted_lengths": [1], "drafted_lengths": [2],
                 "turns": [{"wall_s": 1.0 + r, "ttft_s": 0.1}], "new_tokens": 2,
                 **{name: 1.0 + r for name in ("wall_s", "batch_share_s", "ttft_s", "prefill_s",
                                               "draft_s", "verify_s")}}]

    merged = run_rounds(contenders, 3, decode)
    assert calls == [("base", 0), ("a", 0), ("b", 0), ("a", 1), ("b", 1), ("base", 1),
                     ("b", 2), ("base", 2), ("a", 2)]
    assert [m[0]["strategy"] for m in merged] == ["base", "a", "b"]
    assert merged[1][0]["round_wall_s"] == [1.0, 2.0, 3.0] and merged[1][0]["wall_s"] == 2.0


# -- merging and noise from hand-made records --------------------------------------------------

def record(walls: list[float], tokens: list[int] | None = None, **extra) -> list[dict]:
    """One prompt's records over len(walls) rounds."""
    return [{"suite": "s", "prompt_id": "p1", "category": "s", "strategy": "sps",
             "drafter": "ngram", "status": "ok", "error": None, "batch_size": 1,
             "output_token_ids": tokens or [5, 6, 7], "accepted_lengths": [2],
             "drafted_lengths": [3], "drafted_nodes": [3], "new_tokens": 3,
             "wall_s": w, "batch_share_s": w, "ttft_s": w / 10, "prefill_s": w / 10,
             "draft_s": w / 5, "verify_s": w / 2, "peak_memory_bytes": 100 + i,
             "turns": [{"wall_s": w, "ttft_s": w / 10, "new_tokens": 3}], **extra}
            for i, w in enumerate(walls)]


def test_merge_takes_medians_and_keeps_every_round():
    merged = merge_rounds(record([3.0, 1.0, 2.0]))
    assert merged["wall_s"] == merged["batch_share_s"] == 2.0
    assert merged["ttft_s"] == pytest.approx(0.2) and merged["draft_s"] == pytest.approx(0.4)
    assert merged["round_wall_s"] == [3.0, 1.0, 2.0]
    assert merged["round_ttft_s"] == pytest.approx([0.3, 0.1, 0.2])
    assert merged["turns"][0]["wall_s"] == 2.0 and merged["rounds"] == 3
    assert merged["peak_memory_bytes"] == 102
    assert merge_rounds(record([3.0]))["wall_s"] == 3.0  # one round: unchanged
    two_turns = record([3.0, 1.0, 2.0])
    for r, w in zip(two_turns, (1.0, 5.0, 2.0), strict=True):
        r["turns"].append({"wall_s": w, "ttft_s": 0.1, "new_tokens": 3})
    merged = merge_rounds(two_turns)  # a record's latency stays the sum of its turns'
    assert [t["wall_s"] for t in merged["turns"]] == [2.0, 2.0] and merged["wall_s"] == 4.0


def test_merge_fails_a_prompt_whose_rounds_differ():
    rounds = record([1.0, 1.0, 1.0])
    rounds[2]["output_token_ids"] = [5, 6, 8]
    merged = merge_rounds(rounds)
    assert merged["status"] == "failed" and merged["prompt_id"] == "p1"
    assert merged["error"].startswith("NondeterministicRounds: prompt p1 of suite s under sps")
    assert "round 3" in merged["error"] and "output_token_ids first differ at index 2" in \
        merged["error"]


def test_timing_noise_from_hand_made_records():
    fast = merge_rounds(record([1.0, 1.1, 0.9]))  # spread 0.2 / 1.0
    slow = merge_rounds(record([2.0, 3.0, 2.5]))  # spread 1.0 / 2.5
    base = {**merge_rounds(record([4.0, 4.4, 4.0])), "strategy": "baseline"}  # 0.4 / 4.0
    assert timing_spread(fast) == pytest.approx(0.2)
    noise = timing_noise([fast, slow, base])
    assert noise["rounds"] == 3
    assert noise["overall"] == pytest.approx(statistics.median([0.2, 0.4, 0.1]))
    assert noise["by_strategy"] == pytest.approx({"baseline": 0.1, "sps": 0.3})
    assert timing_noise([merge_rounds(record([1.0]))]) is None  # measured once: no estimate


def test_compare_calls_a_change_under_the_noise_floor_within_noise(tmp_path):
    base = make_run(tmp_path / "base")
    cand = make_run(tmp_path / "cand", speed=0.97)  # speedup 3% lower, on every prompt
    assert compare(base, cand, "-t", "speedup=1%").returncode == 1  # no floor: a regression
    for folder, floor in ((base, 0.05), (cand, 0.01)):
        path = folder / "results.json"
        data = json.loads(path.read_text())
        path.write_text(json.dumps({**data, "timing_noise": {"overall": floor, "rounds": 3,
                                                             "by_strategy": {}}}))
    result = compare(base, cand, "-t", "speedup=1%")  # 3% < the larger floor, 5%
    assert result.returncode == 0, result.stdout + result.stderr
    assert "timing noise floor 5.0%" in " ".join(result.stderr.split())
    speedup = metric(compare(base, cand, "-t", "speedup=1%", "--format", "json"), "sps",
                     "speedup")
    assert speedup["within_noise"] and speedup["noise_floor_pct"] == pytest.approx(5.0)
    path = base / "results.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "timing_noise": None}))
    assert compare(base, cand, "-t", "speedup=1%").returncode == 1  # floor 1% < 3%


# -- real runs ---------------------------------------------------------------------------------

def test_rounds_repeat_identical_tokens_with_the_suffix_drafter(tmp_path, tiny_target):
    """Three rounds under the suffix drafter's global memory (which learns from every finished
    output) give the tokens and accepted lengths of a one-round run, with three timings each."""
    common = ["--target", str(tiny_target), "--drafter", "suffix:max_depth=8", "--temperature",
              "0", "--strategy", "greedy", "--strategy", "sps", "--suite", "chat",
              "--limit", "3", "--max-new-tokens", "12", "--k", "3"]
    runs = {}
    for rounds, batch in ((1, 1), (3, 1), (3, 2)):
        out = tmp_path / f"r{rounds}b{batch}"
        result = run_cli("run", *common, "--rounds", str(rounds), "--batch-size", str(batch),
                         "--output", str(out))
        assert result.returncode == 0, result.stderr
        runs[rounds, batch] = out
    once, thrice = by_key(read_records(runs[1, 1])), by_key(read_records(runs[3, 1]))
    batched = by_key(read_records(runs[3, 2]))
    assert once.keys() == thrice.keys() == batched.keys() and len(once) >= 6
    for key, one in once.items():
        assert thrice[key]["status"] == batched[key]["status"] == "ok", key
        assert "round_wall_s" not in one
        for name in STEPS:
            assert thrice[key][name] == one[name], (key, name)
        assert len(thrice[key]["round_wall_s"]) == len(thrice[key]["round_ttft_s"]) == 3
        merged = thrice[key]
        assert merged["batch_share_s"] == statistics.median(merged["round_batch_share_s"])
        assert merged["ttft_s"] == statistics.median(merged["round_ttft_s"])
        assert merged["wall_s"] == pytest.approx(sum(t["wall_s"] for t in merged["turns"]))
        assert batched[key]["output_token_ids"] == one["output_token_ids"]
    drafted = sum(sum(r["accepted_lengths"]) for k, r in thrice.items() if k[1] != "baseline")
    assert drafted > 0  # the memory did draft something
    data = json.loads((runs[3, 1] / "results.json").read_text())
    assert data["config"]["rounds"] == 3 and data["timing_noise"]["rounds"] == 3
    assert set(data["timing_noise"]["by_strategy"]) == {"baseline", "greedy", "sps"}
    assert all(r["timing_noise"] is not None for r in data["results"])
    assert json.loads((runs[1, 1] / "results.json").read_text())["timing_noise"] is None
    env = data["environment"]
    for name in ("cpu_threads", "interop_threads", "cpu_affinity", "machine_start",
                 "machine_end"):
        assert name in env, name
    assert len(env["machine_end"]["load_average"]) == 3 and env["gpu"] is None


class FlakyDrafter:
    """Drafts `k` copies of the last token on every other sequence and nothing on the others:
    a drafter whose proposals change from one call to the next for the same prompt and seed."""

    name = "flaky"
    PARAMS: dict = {}
    NEEDS_MODEL = False
    sequences = 0

    def __init__(self) -> None:
        self.params: dict = {}

    def reset(self, seed: int) -> None:
        FlakyDrafter.sequences += 1

    def propose(self, context: list[int], k: int) -> Draft:
        return Draft([context[-1]] * k if FlakyDrafter.sequences % 2 else [], None)

    def observe(self, num_accepted: int) -> None:
        pass


def test_a_decoding_that_changes_between_rounds_fails_loudly(tmp_path, tiny_target):
    target = load_model(check_spec(str(tiny_target)), "float32")
    greedy = SamplingConfig(temperature=0.0)
    contenders = [
        Contender("baseline", "none", Engine(target.model, target.vocab_size, greedy)),
        Contender("greedy", "flaky", Engine(target.model, target.vocab_size, greedy,
                                            get_strategy("greedy"), FlakyDrafter(), 3)),
    ]
    cfg = RunConfig(target=str(tiny_target), temperature=0.0, max_new_tokens=8, rounds=2)
    suite = load_suite("default", 2)
    notes: list[str] = []
    progress = NoProgress()
    progress.note = notes.append  # type: ignore[method-assign]
    with RunFolder.claim(str(tmp_path / "run")) as folder:
        decode_all(contenders, [suite], target.tokenizer, cfg, folder, progress)
    records = read_records(tmp_path / "run")
    assert len(records) == 4
    for r in records:
        if r["strategy"] == "baseline":
            assert r["status"] == "ok" and len(r["round_wall_s"]) == 2
        else:
            assert r["status"] == "failed"
            assert r["error"].startswith(f"NondeterministicRounds: prompt {r['prompt_id']} of "
                                         "suite default under greedy decoded differently in "
                                         "round 2")
    assert len(notes) == 2 and all(n.startswith("warning: NondeterministicRounds") for n in notes)


# -- machine state and bad input ---------------------------------------------------------------

def test_environment_pins_threads_and_reads_the_machine():
    import torch

    pinned = pin_threads()
    assert pinned["cpu_threads"] == torch.get_num_threads() <= len(pinned["cpu_affinity"])
    assert pinned["interop_threads"] >= 1
    state = machine_state(torch.device("cpu"))
    assert len(state["load_average"]) == 3 and state["gpu_clocks_mhz"] is None
    assert state["cpu_mhz"] is None or all(mhz > 0 for mhz in state["cpu_mhz"])
    busy = busy_warning({"load_average": [1000.0, 0.0, 0.0]}, "start", 2)
    assert busy is not None and "load average 1000.00" in busy and "start" in busy
    assert busy_warning({"load_average": [0.0, 0.0, 0.0]}, "end", 2) is None
    # a run alone on its cores ends at a load of about its own threads: not busy
    cores = os.cpu_count() or 1
    assert busy_warning({"load_average": [float(cores), 0.0, 0.0]}, "end", cores) is None
    assert busy_warning({"load_average": [2.0 * cores, 0.0, 0.0]}, "end", cores) is not None


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_bad_rounds_exit_2(value, tmp_path):
    assert_bad_input(run_cli("run", "--rounds", value, "--output", str(tmp_path / "o")),
                     "--rounds")


def test_rounds_in_a_config_file(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("rounds: 0\n")
    assert_bad_input(run_cli("run", "--config", str(config)), "--rounds must be >= 1")
    config.write_text("rounds: 5\n")
    result = run_cli("run", "--config", str(config), "--print-config")
    assert result.returncode == 0, result.stderr
    assert "rounds: 5" in result.stdout
