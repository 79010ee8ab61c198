"""Stop signals and run folders, with real subprocesses and real signals.

Run: .venv/bin/python -m pytest tests/test_cli_signals.py -q

SIGTERM and SIGHUP end a run like Ctrl-C: finished records kept, results written with the
signal's name, one line on stderr, exit code 128 + the signal number. A record line is written
whole or not at all. A run folder is claimed with a lock: a second run into it fails with exit
code 2, and a folder left by a killed run says so.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import REPO, SPECBENCH, run_cli


@pytest.fixture(scope="module")
def long_suite(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("suite") / "long.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"w{i % 50} w{i % 7}"}) + "\n"
                            for i in range(200)))
    return path


def start_run(target: Path, suite: Path, out: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([*SPECBENCH, "run", "--target", str(target), "--suite", str(suite),
                             "--strategy", "sps", "--max-new-tokens", "64", "--output",
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO, **kwargs)  # fmt: skip


def wait_for_records(out: Path, count: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    records = out / "records.jsonl"
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if records.exists() and records.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"no {count} records in {timeout} s (exit code {proc.poll()})")


def whole_records(out: Path) -> list[dict]:
    """Every line of records.jsonl, each a complete JSON object ending in a newline."""
    text = (out / "records.jsonl").read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_stop_signals_keep_finished_work(sig, tiny_target, long_suite, tmp_path):
    out = tmp_path / "run"
    proc = start_run(tiny_target, long_suite, out)
    wait_for_records(out, 4, proc)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, stderr
    assert "Traceback" not in stderr
    assert f"interrupted by {sig.name}" in stderr
    data = json.loads((out / "results.json").read_text())
    assert data["status"] == "interrupted" and data["interrupted_by"] == sig.name
    records = whole_records(out)
    assert len(records) >= 4
    assert sum(r["num_prompts"] + r["num_failed"] for r in data["results"]) == len(records)
    assert "interrupted" in stdout  # the table title says the results are partial


def test_a_signal_while_models_load_leaves_nothing(tiny_target, long_suite, tmp_path):
    out = tmp_path / "run"
    proc = start_run(tiny_target, long_suite, out)
    for line in proc.stderr:  # progress lines: the stderr of a subprocess is not a terminal
        if line.startswith("loading target model"):
            break
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted by SIGTERM"
    assert "Traceback" not in stderr and not out.exists()


def test_record_lines_are_written_whole_under_signals(tmp_path):
    """A process appending 1 MB records is stopped by SIGTERM at an arbitrary moment: every line
    in the file is a whole record."""
    script = textwrap.dedent(f"""
        import sys
        from specbench_cli.interrupts import Interrupted, stop_signals_raise
        from specbench_cli.run_folder import RunFolder
        folder = RunFolder.claim({str(tmp_path / "run")!r})
        try:
            with stop_signals_raise():
                for i in range(10_000):
                    folder.append({{"prompt_id": str(i), "output_text": ["x" * 1_000_000]}})
        except Interrupted as exc:
            sys.exit(exc.exit_code)
    """)
    for delay in (0.5, 0.9, 1.3):
        proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
        records = whole_records(tmp_path / "run")
        assert records and all(len(r["output_text"][0]) == 1_000_000 for r in records)
        (tmp_path / "run" / "records.jsonl").unlink()


def test_a_folder_locked_by_another_run_is_bad_input(tiny_target, long_suite, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with (out / ".specbench.lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_cli("run", "--target", str(tiny_target), "--suite", str(long_suite),
                         "--output", str(out))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "another specbench run" in result.stderr
    assert not (out / "records.jsonl").exists()


def test_two_runs_started_together_do_not_share_a_folder(tiny_target, long_suite, tmp_path):
    out = tmp_path / "run"
    first, second = (start_run(tiny_target, long_suite, out) for _ in range(2))
    deadline = time.time() + 300
    while first.poll() is None and second.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    loser, winner = (first, second) if first.poll() is not None else (second, first)
    _, stderr = loser.communicate(timeout=60)
    assert loser.returncode == 2, stderr
    assert "another specbench run" in stderr and "Traceback" not in stderr
    wait_for_records(out, 3, winner)
    winner.send_signal(signal.SIGTERM)
    winner.communicate(timeout=120)
    assert winner.returncode == 143
    records = whole_records(out)
    assert len({(r["prompt_id"], r["strategy"]) for r in records}) == len(records)


def test_a_folder_left_by_a_killed_run_says_so(tiny_target, long_suite, tmp_path):
    out = tmp_path / "run"
    proc = start_run(tiny_target, long_suite, out)
    wait_for_records(out, 2, proc)
    proc.kill()
    proc.communicate(timeout=60)
    count = len(whole_records(out))
    result = run_cli("run", "--target", str(tiny_target), "--suite", str(long_suite),
                     "--output", str(out))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"unfinished run: {count} records and no results.json" in result.stderr


def test_results_and_records_follow_the_umask(tiny_target, tmp_path):
    suite = tmp_path / "s.jsonl"
    suite.write_text('{"id": "a", "prompt": "w1 w2"}\n')
    for umask, mode in ((0o022, 0o644), (0o077, 0o600), (0o027, 0o640)):
        out = tmp_path / f"run{umask:o}"
        result = subprocess.run(
            [*SPECBENCH, "run", "--target", str(tiny_target), "--suite", str(suite), "--strategy",
             "sps", "--max-new-tokens", "4", "--warmup", "0", "--output", str(out)],
            capture_output=True, text=True, cwd=REPO, preexec_fn=lambda m=umask: os.umask(m))
        assert result.returncode == 0, result.stderr
        for name in ("results.json", "records.jsonl"):
            assert (out / name).stat().st_mode & 0o777 == mode, (name, oct(umask))
