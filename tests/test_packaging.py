"""A wheel install (not a clone) still finds the bundled suites and kernel sources."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_install_ships_suites_and_kernels(tmp_path: Path) -> None:
    src = tmp_path / "src"  # build from a copy: setuptools writes build/ and egg-info beside it
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "specbench_cli", "suites", "kernels"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy
        copy(REPO / name, src / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(wheels)], check=True)  # fmt: skip
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    wheel = next(wheels.glob("specbench-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    # dependencies come from this environment's site-packages, specbench_cli from the wheel
    env = {**os.environ, "PYTHONPATH": site.getsitepackages()[0]}
    code = ("import specbench_cli, specbench_cli.kernels as k, specbench_cli.suites as s;"
            "print(specbench_cli.__file__); print(k.source_dir()); print(s.bundled_suites())")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0].startswith(str(venv))  # the installed copy, not the clone
    assert Path(out[1]) == venv / "share" / "specbench" / "kernels"
    assert (Path(out[1]) / "verify.h").is_file() and (Path(out[1]) / "verify_cuda.cu").is_file()
    assert "default" in out[2] and "humaneval" in out[2]
    listed = subprocess.run([str(venv / "bin" / "specbench"), "suites"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "summarization" in listed.stdout
