"""The code sandbox against hostile programs: each is a failed run, bounded in time, harmless.

Run: .venv/bin/python -m pytest tests/test_sandbox.py -q
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from specbench_cli.quality.sandbox import run_python

TIMEOUT_S = 2.0
BOUND_S = 15.0  # generous wall-clock bound for any run, start-up included, on a loaded machine


def _run(code: str, **kwargs):
    result = run_python(code, timeout_s=kwargs.pop("timeout_s", TIMEOUT_S), **kwargs)
    assert result.wall_s < BOUND_S
    return result


def test_ordinary_code_runs_and_reports_output():
    result = _run("import math\nprint(math.factorial(5))")
    assert result.ok and result.status == "ok" and result.returncode == 0
    assert result.stdout.strip() == "120"


def test_exception_and_exit_codes():
    failed = _run("raise ValueError('bad value')")
    assert not failed.ok and failed.status == "error" and failed.detail == "ValueError: bad value"
    assert _run("import sys\nsys.exit(0)").ok
    assert not _run("import sys\nsys.exit(3)").ok


def test_skipping_the_end_with_os_exit_is_not_a_success():
    result = _run("import os\nos._exit(0)")
    assert result.returncode == 0 and not result.ok


def test_infinite_loop_times_out():
    result = _run("while True:\n    pass")
    assert not result.ok and result.status == "timeout" and result.returncode is None
    assert result.wall_s < TIMEOUT_S + 3


def test_sleeping_forever_times_out():
    result = _run("import time\ntime.sleep(60)")
    assert result.status == "timeout" and result.wall_s < TIMEOUT_S + 3


def test_os_system_is_refused(tmp_path):
    target = tmp_path / "from_os_system"
    result = _run(f"import os\nos.system('touch {target}')")
    assert not result.ok and "os.system" in result.detail
    assert not target.exists()


def test_subprocess_is_refused(tmp_path):
    target = tmp_path / "from_subprocess"
    result = _run(f"import subprocess\nsubprocess.run(['touch', '{target}'])")
    assert not result.ok
    assert not target.exists()


def test_fork_bomb_is_refused():
    result = _run("import os\nwhile True:\n    os.fork()")
    assert not result.ok and "os.fork" in result.detail


def test_multiprocessing_is_refused():
    code = "import multiprocessing as mp\np = mp.Process(target=print)\np.start()\np.join()"
    assert not _run(code).ok


def test_writing_outside_the_directory_is_refused(tmp_path):
    target = tmp_path / "outside.txt"
    result = _run(f"open({str(target)!r}, 'w').write('x')")
    assert not result.ok and "not allowed" in result.detail
    assert not target.exists()
    assert not _run(f"import os\nos.makedirs({str(tmp_path / 'newdir')!r})").ok
    assert not (tmp_path / "newdir").exists()
    via_link = f"import os\nos.symlink({str(target)!r}, 'link')\nopen('link', 'w').write('x')"
    assert not _run(via_link).ok
    assert not target.exists()


def test_writing_to_the_real_home_is_refused():
    target = Path.home() / f".specbench-sandbox-test-{uuid.uuid4().hex}"
    try:
        result = _run(f"from pathlib import Path\nPath({str(target)!r}).write_text('pwned')")
        assert not result.ok
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


def test_home_and_cwd_are_the_throwaway_directory():
    code = (
        "import os\n"
        "home = os.path.expanduser('~')\n"
        "assert home == os.getcwd() == os.environ['TMPDIR'], (home, os.getcwd())\n"
        "open(os.path.join(home, 'scratch.txt'), 'w').write('ok')\n"
        "print(home)\n"
    )
    result = _run(code)
    assert result.ok, result.stderr
    home = result.stdout.splitlines()[0]
    assert not Path(home).exists()  # removed afterwards


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("SPECBENCH_TEST_SECRET", "hunter2")
    result = _run("import os\nprint(os.environ.get('SPECBENCH_TEST_SECRET'))")
    assert result.ok and result.stdout.strip() == "None"


def test_memory_bomb_fails():
    result = _run("x = bytearray(8 * 1024 ** 3)", memory_mb=512)
    assert not result.ok and "MemoryError" in result.detail
    growing = _run(
        "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024 ** 2))", memory_mb=512
    )
    assert not growing.ok


def test_network_is_unreachable():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.5)
        port = server.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)"
        result = _run(code)
        assert not result.ok
        with pytest.raises(TimeoutError):
            server.accept()


def test_ctypes_is_refused():
    assert not _run("import ctypes\nctypes.CDLL(None).fork()").ok


def test_flooding_stdout_is_bounded():
    result = _run("while True:\n    print('x' * 1000)")
    assert not result.ok
    assert len(result.stdout) <= 4000


def test_files_are_provided():
    result = _run("print(open('data.txt').read())", files={"data.txt": "hello"})
    assert result.ok and result.stdout.strip() == "hello"
