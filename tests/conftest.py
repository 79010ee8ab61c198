"""Shared fixtures: tiny random-weight models saved as real model folders (specbench_cli.tiny),
and a helper that runs the real CLI in a subprocess. Nothing is downloaded."""

from __future__ import annotations

import os
import subprocess
import sys
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
