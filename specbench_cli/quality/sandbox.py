"""Run untrusted (model-written) Python in a separate, limited subprocess.

What a sandboxed run gets, in layers (any one failing still leaves the others):
- its own process and session, killed as a group when the wall-clock timeout passes;
- rlimits set in the child before the code runs: address space (`RLIMIT_AS`, `RLIMIT_DATA`), CPU
  seconds, no new processes or threads (`RLIMIT_NPROC` 0; the kernel ignores it for root, the
  audit hook below covers that case), file size (`RLIMIT_FSIZE`), open files, no core dumps;
- no network: a fresh network namespace via `unshare --net` (or `unshare -rn` for ordinary
  users) when the kernel allows it, and always an audit hook that refuses to create sockets;
- a throw-away temporary directory as working directory, `HOME` and `TMPDIR`; a scrubbed
  environment (PATH, LANG, HOME, TMPDIR only); `python -I` (no user site, no PYTHON* variables);
- a `sys.addaudithook` hook, installed before the code runs, that refuses: writes, renames,
  deletions, links and directory creation outside the temporary directory (`/dev/null` aside),
  mode and owner changes, `os.system`/`exec*`/`spawn*`/`fork`/`posix_spawn`/`subprocess`, signals
  to other processes, `ctypes`, and importing `_posixsubprocess`, `ctypes` or `resource`.

A run is `ok` only when the code finished (or called `sys.exit(0)`) and the trusted bootstrap then
printed a per-run random token, so code that kills its own interpreter with `os._exit(0)` is not
mistaken for a success. Hangs, crashes, forks, memory bombs and refused operations all come back
as a `SandboxResult` with `ok=False`; `run_python` never raises for anything the code does.

This guards against model mistakes, not a determined attacker (an audit hook cannot see `os.open`
with `dir_fd`, for instance); run untrusted benchmarks in a container as well.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_MB = 1024
_OUTPUT_TAIL_CHARS = 4000
_MAX_FILE_BYTES = 16 << 20  # RLIMIT_FSIZE: also caps what the code may print


@dataclass(frozen=True)
class SandboxResult:
    ok: bool  # the code ran to its end (or exited 0) and the bootstrap confirmed it
    status: str  # "ok" | "error" (exception, non-zero exit) | "timeout" | "killed" (a signal)
    returncode: int | None  # None when the sandbox killed it on timeout
    detail: str  # last stderr line, or why the run was stopped
    wall_s: float
    stdout: str = ""  # the last few thousand characters
    stderr: str = ""


# The trusted part of the child. It reads the run token from stdin, sets the limits, installs the
# audit hook, then executes main.py from the working directory as __main__.
_BOOTSTRAP = r"""
def _specbench_bootstrap():
    import os, resource, sys
    token = sys.stdin.readline().strip()
    limits = [int(v) for v in sys.argv[1:6]]  # memory, cpu, fsize, nofile, nproc
    root = os.path.realpath(os.getcwd())
    out_fd = os.dup(1)
    for res, value in ((resource.RLIMIT_AS, limits[0]), (resource.RLIMIT_DATA, limits[0]),
                       (resource.RLIMIT_CPU, limits[1]), (resource.RLIMIT_FSIZE, limits[2]),
                       (resource.RLIMIT_NOFILE, limits[3]), (resource.RLIMIT_NPROC, limits[4]),
                       (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(res, (value, value))
    del sys.modules["resource"]
    sys.dont_write_bytecode = True
    with open("main.py", encoding="utf-8") as fh:
        source = fh.read()

    blocked = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
               "subprocess.Popen", "os.kill", "os.killpg", "socket.__new__", "socket.connect",
               "socket.bind", "socket.getaddrinfo", "ctypes.dlopen", "ctypes.dlsym",
               "ctypes.call_function", "os.chmod", "os.chown", "os.chflags", "os.lchflags",
               "os.setxattr", "os.removexattr", "sqlite3.connect", "os.startfile", "pty.spawn"}
    blocked_imports = {"_posixsubprocess", "ctypes", "_ctypes", "resource"}
    # event -> (indexes of path arguments, indexes of dir_fd arguments)
    path_events = {"os.mkdir": ((0,), (2,)), "os.remove": ((0,), (1,)), "os.rmdir": ((0,), (1,)),
                   "os.rename": ((0, 1), (2, 3)), "os.symlink": ((1,), (2,)),
                   "os.link": ((0, 1), (2, 3)), "os.truncate": ((0,), ()),
                   "os.utime": ((0,), (3,)), "shutil.rmtree": ((0,), ()),
                   "shutil.copyfile": ((1,), ()), "shutil.copytree": ((1,), ()),
                   "shutil.move": ((0, 1), ())}
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    realpath, fspath, sep = os.path.realpath, os.fspath, os.sep

    def inside(path):
        if isinstance(path, int):
            return True
        target = realpath(fspath(path))
        if isinstance(target, bytes):
            target = target.decode(errors="replace")
        return target == root or target.startswith(root + sep) or target == "/dev/null"

    def hook(event, args):  # realpath/fspath raise no audit events, so this cannot recurse
        if event in blocked:
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "import" and args[0] in blocked_imports:
            raise ImportError(f"sandbox: importing {args[0]} is not allowed")
        if event == "open":
            path, mode, flags = args
            writes = (isinstance(flags, int) and flags & write_flags) or (
                isinstance(mode, str) and any(c in mode for c in "wax+"))
            if writes and not inside(path):
                raise PermissionError(f"sandbox: writing {path!r} is not allowed")
        elif event in path_events:
            paths, dir_fds = path_events[event]
            for i in dir_fds:  # a path relative to an open directory cannot be checked
                if i < len(args) and args[i] not in (None, -1, -100):
                    raise PermissionError(f"sandbox: {event} with dir_fd is not allowed")
            for i in paths:
                if i < len(args) and args[i] is not None and not inside(args[i]):
                    raise PermissionError(f"sandbox: {event} on {args[i]!r} is not allowed")

    sys.addaudithook(hook)
    code = compile(source, "main.py", "exec")
    scope = {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__}
    try:
        exec(code, scope)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os.write(out_fd, ("\n" + token + "\n").encode())

_specbench_bootstrap()
"""


def run_python(
    code: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_mb: int = DEFAULT_MEMORY_MB,
    files: dict[str, str] | None = None,
) -> SandboxResult:
    """Run `code` as `__main__` in a fresh sandboxed interpreter; never raises for what it does.

    `files` are written into the temporary working directory first (name -> text), e.g. input data.
    """
    token = secrets.token_hex(16)
    workdir = Path(tempfile.mkdtemp(prefix="specbench-sandbox-"))
    logs = Path(tempfile.mkdtemp(prefix="specbench-sandbox-logs-"))  # outside the child's reach
    try:
        (workdir / "main.py").write_text(code, encoding="utf-8")
        for name, text in (files or {}).items():
            (workdir / name).write_text(text, encoding="utf-8")
        limits = [memory_mb << 20, int(timeout_s) + 1, _MAX_FILE_BYTES, 64, 0]
        argv = [*_net_isolation(), sys.executable, "-I", "-c", _BOOTSTRAP, *map(str, limits)]
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(workdir),
            "TMPDIR": str(workdir),
            "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1",
        }
        start = time.perf_counter()
        with open(logs / "stdout", "wb") as stdout, open(logs / "stderr", "wb") as stderr:
            try:
                returncode = _run(argv, token, workdir, env, stdout, stderr, timeout_s)
            except OSError as exc:  # the interpreter could not be started at all
                return SandboxResult(False, "error", None, f"cannot start: {exc}", 0.0)
        wall_s = time.perf_counter() - start
        out_text = _tail(logs / "stdout")
        err_text = _tail(logs / "stderr")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)
    return _result(returncode, token, out_text, err_text, wall_s, timeout_s)


def _run(argv, token, workdir, env, stdout, stderr, timeout_s) -> int | None:
    """Start the child, feed it the token, wait; None when it ran past the timeout."""
    proc = subprocess.Popen(
        argv,
        cwd=workdir,
        env=env,
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
    )
    try:
        proc.communicate(input=(token + "\n").encode(), timeout=timeout_s)
        return proc.returncode
    except subprocess.TimeoutExpired:
        return None
    finally:
        _kill_group(proc)  # also whatever it left behind in its session


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _result(returncode, token, out_text, err_text, wall_s, timeout_s) -> SandboxResult:
    lines = out_text.rstrip("\n").splitlines()
    confirmed = bool(lines) and lines[-1] == token
    if confirmed:
        out_text = out_text.rstrip("\n")[: -len(token)].rstrip("\n")
    last_err = next((line for line in reversed(err_text.splitlines()) if line.strip()), "")
    if returncode is None:
        status, detail = "timeout", f"timed out after {timeout_s:g} s"
    elif returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else "?"
        status, detail = (
            "killed",
            f"killed by signal {name}" + (f": {last_err}" if last_err else ""),
        )
    elif returncode == 0 and confirmed:
        status, detail = "ok", ""
    else:
        status, detail = "error", last_err or f"exit code {returncode}"
    return SandboxResult(status == "ok", status, returncode, detail, wall_s, out_text, err_text)


def _tail(path: Path) -> str:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - _OUTPUT_TAIL_CHARS))
        return fh.read().decode("utf-8", errors="replace")


@functools.cache
def _net_isolation() -> tuple[str, ...]:
    """The `unshare` prefix that gives the child an empty network namespace, if permitted here."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    for prefix in ((unshare, "--net"), (unshare, "--map-root-user", "--net")):
        try:
            probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return prefix
    return ()
