"""Data-parallel runs under the real launchers, resumed runs and model placement.

Run: .venv/bin/python -m pytest tests/test_distributed.py -q

`torchrun` and `accelerate launch` start two CPU processes (gloo) on a tiny random model; their
run folder must hold what one process writes: the same records in the same order with the same
tokens and counts, one `results.json`. A worker killed with SIGKILL leaves an `incomplete` run
that `--resume` completes with the same tokens; an interrupted single-process run resumes too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, interrupt_run, run_cli

from specbench_cli.distributed import my_share, pending_groups, record_order
from specbench_cli.launch import Launch
from specbench_cli.placement import parse_max_memory, placement_problem

BIN = Path(sys.executable).parent
TORCHRUN = [str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2"]
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
CLI = ["-m", "specbench_cli", "run"]
FLAGS = ["--strategy", "sps", "--strategy", "greedy", "--temperature", "0", "--max-new-tokens",
         "16", "--warmup", "0"]  # fmt: skip
PROMPTS = 12
SAME = ("suite", "prompt_id", "strategy", "drafter", "status", "output_token_ids", "new_tokens",
        "accepted_lengths", "drafted_lengths", "target_forward_passes", "batch_index")  # fmt: skip
COUNTS = ("num_prompts", "num_failed", "new_tokens", "target_forward_passes",
          "mean_accepted_tokens", "acceptance_rate", "per_position_acceptance")  # fmt: skip


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("suite") / "dp.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"w{i % 50} w{i % 7} w3"})
                            + "\n" for i in range(PROMPTS)))  # fmt: skip
    return path


def run_flags(target: Path, suite: Path, *extra: str) -> list[str]:
    return [*FLAGS, "--target", str(target), "--suite", str(suite), *extra]


def run_args(target: Path, suite: Path, out: Path, *extra: str) -> list[str]:
    return [*CLI, *run_flags(target, suite, *extra), "--output", str(out)]


def launch(launcher: list[str], args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([*launcher, *args], cwd=REPO, env=CHILD_ENV, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def same_fields(out: Path) -> list[tuple]:
    return [tuple(r.get(k) for k in SAME) for r in records(out)]


def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def counts(out: Path) -> list[tuple]:
    return [(row["strategy"], *(row[k] for k in COUNTS)) for row in results(out)["results"]]


@pytest.fixture(scope="module")
def single(tiny_target, suite, tmp_path_factory) -> Path:
    """The reference: the same run in one plain process."""
    out = tmp_path_factory.mktemp("single") / "run"
    proc = launch([sys.executable], run_args(tiny_target, suite, out))
    assert proc.returncode == 0, proc.stderr
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_like_single(out: Path, single: Path, world_size: int = 2) -> None:
    assert same_fields(out) == same_fields(single)
    assert counts(out) == counts(single)
    data = results(out)
    assert data["status"] == "complete" and "missing" not in data
    assert data["environment"]["world_size"] == world_size
    assert [r["rank"] for r in data["environment"]["ranks"]] == list(range(world_size))
    assert all(r["device"] == "cpu" and r["host"] for r in data["environment"]["ranks"])
    names = {p.name for p in out.iterdir()}
    assert names == {"records.jsonl", "results.json", "run.yaml", ".specbench.lock"}


def test_torchrun_two_processes_equal_one(tiny_target, suite, single, tmp_path):
    out = tmp_path / "run"
    proc = launch(TORCHRUN, run_args(tiny_target, suite, out))
    assert proc.returncode == 0, proc.stderr
    check_like_single(out, single)
    assert proc.stdout.count("specbench: target") == 1  # one results table, from rank 0


def test_accelerate_launch_two_processes_equal_one(tiny_target, suite, single, tmp_path):
    out = tmp_path / "run"
    accelerate = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
                  "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                  "--main_process_port", str(free_port())]  # fmt: skip
    proc = launch(accelerate, run_args(tiny_target, suite, out))
    assert proc.returncode == 0, proc.stderr
    check_like_single(out, single)


def kill_rank1_after(out: Path, proc: subprocess.Popen, count: int) -> None:
    """SIGKILL the rank-1 worker (its pid from `.rank1.json`) once it has `count` records."""
    rank_records, info = out / "records.rank1.jsonl", out / ".rank1.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if rank_records.exists() and rank_records.read_bytes().count(b"\n") >= count:
            os.kill(json.loads(info.read_text())["pid"], signal.SIGKILL)
            return
        time.sleep(0.02)
    raise AssertionError(f"rank 1 wrote no {count} records (exit code {proc.poll()})")


def test_a_killed_rank_gives_incomplete_and_resume_completes(tiny_target, suite, single,
                                                            tmp_path):  # fmt: skip
    out = tmp_path / "run"
    proc = subprocess.Popen([*TORCHRUN, *run_args(tiny_target, suite, out)], cwd=REPO,
                            env=CHILD_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    kill_rank1_after(out, proc, 2)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "Signal 9 (SIGKILL)" in stderr and "incomplete: a process of the run was lost" in stderr
    data = results(out)
    assert data["status"] == "incomplete"
    done = {(r["prompt_id"], r["strategy"]) for r in records(out)}
    assert len(done) >= 2  # rank 1's finished records were merged, not lost
    expected = [f"dp/p{i}" for i in range(PROMPTS)
                if not all((f"p{i}", s) in done for s in ("baseline", "sps", "greedy"))]
    assert data["missing"] == expected and expected
    assert not list(out.glob("records.rank*.jsonl"))

    resumed = launch([sys.executable], [*CLI, "--resume", str(out)])
    assert resumed.returncode == 0, resumed.stderr
    assert results(out)["status"] == "complete" and "missing" not in results(out)
    assert same_fields(out) == same_fields(single)
    assert counts(out) == counts(single)


def test_an_interrupted_single_run_resumes(tiny_target, suite, single, tmp_path):
    out = tmp_path / "run"
    proc = interrupt_run(*run_flags(tiny_target, suite), out=out, after_records=4)
    assert proc.returncode == 130, proc.stderr
    assert results(out)["status"] == "interrupted"
    assert f"specbench run --resume {out}" in proc.stderr
    resumed = launch([*TORCHRUN], [*CLI, "--resume", str(out)])
    assert resumed.returncode == 0, resumed.stderr
    assert same_fields(out) == same_fields(single)
    assert results(out)["status"] == "complete"


def test_resume_refuses_other_settings_and_non_run_folders(tmp_path):
    proc = run_cli("run", "--resume", str(tmp_path), "--k", "3")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("Error: --resume takes the settings of the run it continues; "
                                   "remove k")  # fmt: skip
    proc = run_cli("run", "--resume", str(tmp_path))
    assert proc.returncode == 2 and "not a run folder" in proc.stderr


def test_bad_input_is_reported_once(tiny_target, tmp_path):
    proc = launch(TORCHRUN, [*CLI, "--target", str(tiny_target), "--k", "0", "--output",
                             str(tmp_path / "run")])  # fmt: skip
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: --k must be between 1 and 64 (got 0)"]
    assert "exitcode  : 2" in proc.stderr and not (tmp_path / "run").exists()


def test_device_map_auto_on_cpu_decodes_the_same(tiny_target, suite, single, tmp_path):
    out = tmp_path / "run"
    proc = launch([sys.executable], run_args(tiny_target, suite, out, "--device-map", "auto",
                                             "--max-memory", "cpu=2GiB"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert same_fields(out) == same_fields(single)
    assert results(out)["config"]["device_map"] == "auto"


def test_tensor_parallel_under_torchrun_decodes_the_same(tiny_target, suite, single, tmp_path):
    out = tmp_path / "run"
    proc = launch(TORCHRUN, run_args(tiny_target, suite, out, "--tensor-parallel", "--limit", "6"))
    assert proc.returncode == 0, proc.stderr
    assert same_fields(out) == same_fields(single)[: 6 * 3]


@pytest.mark.parametrize("flags, message", [
    (["--device-map", "spread"], "--device-map must be one of auto, balanced, sequential"),
    (["--max-memory", "0=2GiB"], "--max-memory needs --device-map"),
    (["--device-map", "auto", "--max-memory", "0=lots"], "--max-memory: expected DEVICE=SIZE"),
    (["--tensor-parallel"], "--tensor-parallel needs one process per device"),
    (["--tensor-parallel", "--device-map", "auto"],
     "--tensor-parallel and --device-map are two ways"),
])  # fmt: skip
def test_placement_flags_are_checked_before_loading(flags, message):
    proc = run_cli("run", "--target", "/nonexistent-model", *flags)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"Error: {message}") and proc.stderr.count("\n") == 1


def test_placement_rules():
    assert parse_max_memory("0=20GiB, 1=20GB,cpu=60GiB") == {0: "20GiB", 1: "20GB", "cpu": "60GiB"}
    node_of_two = Launch(rank=1, world_size=4, local_rank=1, local_world_size=2)
    assert "--nproc-per-node 1" in placement_problem("auto", None, False, node_of_two)
    assert placement_problem("balanced", "0=1GiB", False, Launch(world_size=2)) is None
    assert placement_problem(None, None, True, node_of_two) is None


class _Suite:
    def __init__(self, name: str, count: int) -> None:
        self.name = name
        self.prompts = tuple(type("P", (), {"id": f"{name}{i}"})() for i in range(count))


def test_groups_are_dealt_round_robin_and_ordered_like_one_process():
    from specbench_cli.config import RunConfig

    cfg = RunConfig(strategies=["sps"], batch_size=2)
    suites = [_Suite("a", 5), _Suite("b", 2)]
    pending = pending_groups(suites, cfg, [])
    assert pending == [("a", 0), ("a", 1), ("a", 2), ("b", 0)]
    shares = [my_share(pending, Launch(rank=r, world_size=3), False) for r in range(3)]
    assert shares == [{("a", 0), ("b", 0)}, {("a", 1)}, {("a", 2)}]
    assert my_share(pending, Launch(rank=1, world_size=3), True) == set(pending)
    done = [{"suite": "a", "prompt_id": f"a{i}", "strategy": s, "drafter": d, "status": "ok"}
            for i in (0, 1, 2) for s, d in (("baseline", "none"), ("sps", "ngram"))]
    assert pending_groups(suites, cfg, done) == [("a", 1), ("a", 2), ("b", 0)]
    key = record_order(suites, cfg)
    shuffled = [done[5], done[0], done[3], done[1]]  # (a2 sps), (a0 base), (a1 sps), (a0 sps)
    assert [(r["prompt_id"], r["strategy"]) for r in sorted(shuffled, key=key)] == [
        ("a0", "baseline"), ("a0", "sps"), ("a1", "sps"), ("a2", "sps")]
