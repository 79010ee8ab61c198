"""Hostile but realistic inputs through the real CLI: each is one `Error:` line and exit code 2,
never a traceback, and found before any model loads where the input allows it.

Run: .venv/bin/python -m pytest tests/test_cli_bad_input.py -q

"Before any model loads" is checked with a target folder whose weights cannot load: had the run
got as far as loading it, the error would name the model instead of the bad setting.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli

from specbench_cli.models import default_gguf_path


def assert_bad_input(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def unloadable(tmp_path_factory) -> Path:
    """A folder that passes the model-spec check (it has a config.json) but cannot load."""
    folder = tmp_path_factory.mktemp("unloadable")
    (folder / "config.json").write_text("{not json")
    return folder


@pytest.mark.parametrize("args,fragment", [
    (["--drafter", "ngram:max_ngram=0"], "max_ngram"),
    (["--drafter", "ngram:max_ngram=2,min_ngram=5"], "min_ngram"),
    (["--k", "1000"], "--k must be between 1 and 64"),
    (["--temperature", "inf"], "--temperature"),
    (["--strategy", "greedy", "--temperature", "0.7"], "--temperature 0"),
    (["--warmup", "-1"], "--warmup"),
    (["--suite", "nosuch"], "unknown suite"),
    (["--target", "a" * 300], "File name too long"),
    (["--suite", "a" * 300], "File name too long"),
    (["--output", "a" * 300], "File name too long"),
])
def test_bad_settings_fail_before_loading(args, fragment, unloadable, tmp_path):
    target = [] if "--target" in args else ["--target", str(unloadable)]
    output = [] if "--output" in args else ["--output", str(tmp_path / "o")]
    assert_bad_input(run_cli("run", *target, *output, *args), fragment)
    assert not (tmp_path / "o").exists()


def test_print_config_validates_like_a_run(unloadable):
    assert_bad_input(run_cli("run", "--suite", "nosuch", "--print-config"), "unknown suite")
    assert_bad_input(run_cli("run", "--target", "/no/such/model", "--print-config"),
                     "no such file")
    assert run_cli("run", "--target", str(unloadable), "--print-config").returncode == 0


@pytest.mark.parametrize("text,fragment", [
    (b"\x89\xff\xfe binary \x00\x01", "not a text file"),
    (b"output: 5\n", "--output expects text, got 5"),
    (b"k: true\n", "--k expects an integer, got true"),
    (b"temperature: [1, 2]\n", "--temperature expects a number, got [1, 2]"),
    (b"k: " + b"9" * 5_000_000 + b"\n", "invalid YAML value"),
    (b"strategy: sps\n", "did you mean 'strategies'"),
])
def test_bad_config_files(text, fragment, unloadable, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_bytes(text)
    assert_bad_input(run_cli("run", "--config", str(config), "--target", str(unloadable)),
                     fragment)


def _gguf_prefix(folder: Path, size: int) -> Path:
    """The first `size` bytes of the default model's GGUF file (a cut-off download)."""
    path = folder / f"cut{size}.gguf"
    with default_gguf_path().open("rb") as f:
        path.write_bytes(f.read(size))
    return path


def _random_gguf(folder: Path) -> Path:
    path = folder / "random.gguf"
    path.write_bytes(bytes(range(256)) * 12)
    return path


@pytest.mark.parametrize("make,fragment", [
    (_random_gguf, "not a GGUF file"),
    (lambda d: _gguf_prefix(d, 2000), "truncated or corrupt GGUF"),
    (lambda d: _gguf_prefix(d, 5_000_000), "truncated or corrupt GGUF"),
])
def test_broken_gguf_files_leave_no_cache_folders(make, fragment, tmp_path):
    cache = tmp_path / "cache"
    result = run_cli("run", "--target", str(make(tmp_path)), "--output", str(tmp_path / "o"),
                     env={"SPECBENCH_CACHE": str(cache)})
    assert_bad_input(result, fragment)
    assert not list(cache.glob("**/*.tmp*")) and not (tmp_path / "o").exists()


def test_failed_conversion_removes_its_temporary_folder(tmp_path, monkeypatch):
    """Past the header check a conversion can still fail; the half-written folder goes."""
    from specbench_cli.errors import ModelLoadError
    from specbench_cli.models import convert_gguf

    monkeypatch.setenv("SPECBENCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelLoadError, match="cannot convert"):
        convert_gguf(_gguf_prefix(tmp_path, 2000))
    assert (tmp_path / "cache").exists() and not list((tmp_path / "cache").glob("**/*.tmp*"))


def test_unusable_output_folders(tiny_target, tmp_path):
    a_file = tmp_path / "somefile"
    a_file.write_text("x")
    for output, fragment in [("/proc/x", "cannot create the run folder"),
                             (f"{a_file}/sub", "is a file, not a folder")]:
        assert_bad_input(run_cli("run", "--target", str(tiny_target), "--output", output,
                                 "--max-new-tokens", "2"), fragment)


def test_binary_gate_file_and_string_schema_version(tmp_path):
    gate = tmp_path / "gate.yaml"
    gate.write_bytes(b"\xff\xfe\x00binary")
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"schema_version": "1", "results": []}))
    assert_bad_input(run_cli("compare", str(results), str(results), "--config", str(gate)),
                     "not a text file")
    assert_bad_input(run_cli("compare", str(results), str(results)),
                     'schema_version "1" (a str) is not supported: this specbench reads the '
                     "integer 1")


@pytest.mark.parametrize("args,fragment", [
    (["bench", "-V", "1000000000000"], "-V values must be between 1 and"),
    (["bench", "-B", "100000000"], "-B values must be between 1 and"),
    (["bench", "-k", "1000"], "-k values must be between 1 and"),
    (["bench", "--repeats", "-5"], "--repeats must be >= 0"),
    (["bench", "--threads", "-3"], "--threads must be >= 0"),
    (["bench", "-B", "4096", "-k", "64", "-V", "1048576"], "GiB"),
])
def test_kernels_bench_bounds(args, fragment):
    assert_bad_input(run_cli("kernels", *args), fragment)


def test_cuda_requests_on_a_machine_without_cuda(unloadable):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_bad_input(run_cli("run", "--backend", "cuda", "--target", str(unloadable)),
                     "--backend cuda: no CUDA device")
    assert_bad_input(run_cli("kernels", "check", "--backend", "cuda"), "--backend cuda")
