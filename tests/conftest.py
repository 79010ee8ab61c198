"""Shared fixtures: tiny random-weight models saved as real model folders (specbench_cli.tiny),
and a helper that runs the real CLI in a subprocess. Nothing is downloaded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from specbench_cli.tiny import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
SPECBENCH = [sys.executable, "-m", "specbench_cli"]


@pytest.fixture(scope="module")
def one_thread():
    """Large elementwise batches on a shared 2-core box: OpenMP contention costs more than it
    gains, so a module asking for this runs single-threaded (restored afterwards)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_target(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_target"), seed=0)


@pytest.fixture(scope="session")
def tiny_draft(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny_draft"), seed=1, layers=1, hidden=16)


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the real `specbench` CLI in a subprocess (the installed package, no mocks)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([*SPECBENCH, *args], cwd=cwd or REPO, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def interrupt_run(*args: str, out: Path, after_records: int,
                  timeout: int = 300) -> subprocess.CompletedProcess:  # fmt: skip
    """Run `specbench run ARGS --output OUT` and press Ctrl-C (SIGINT) once `after_records`
    records are in OUT/records.jsonl; return how the process ended."""
    proc = subprocess.Popen([*SPECBENCH, "run", *args, "--output", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    records = out / "records.jsonl"
    deadline = time.time() + timeout
    while time.time() < deadline and (not records.exists()
                                       or len(records.read_text().splitlines()) < after_records):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
