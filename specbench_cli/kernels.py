"""Python side of the compiled verification kernels in `kernels/` (issue 5, docs/kernels.md 4).

Owns: finding the C++/CUDA sources, building them on first use into a cache
(`$SPECBENCH_CACHE/kernels`, default `~/.cache/specbench/kernels`), loading them once
(`functools.cache`), the availability flags, backend resolution (`auto|torch|cpu|cuda`), and
running one verification step on a compiled backend with exactly the inputs and outputs of the
PyTorch reference `strategies.base.verify_with_noise`, which defines the semantics. Does not own
any acceptance rule: the kernels implement algorithms.md section 1 and are tested against the
reference (tests/test_kernels.py, `specbench kernels check`).

Layers (style.md 2.12): `kernels/verify.h` (policy math shared by both backends) ->
`verify_cpu.cpp` + `cpu_*.h` (C++ twin, OpenMP) and `verify_cuda.cu` + `cuda_common.cuh`
(torch-free CUDA, extern "C") ->
`binding.cpp` (the only torch-aware file: `torch.ops.specbench.verify_cpu/verify_cuda`) -> here.
The CPU twin and the binding build with `torch.utils.cpp_extension.load` (g++, ~15 s once);
the CUDA library is built by `nvcc` directly and loaded with ctypes only when CUDA is present,
its launcher address and the current stream are passed to the binding as integers.

`cpu_backend`, `cuda_backend` and `auto_backend` have the signature of
`strategies.base.verify_with_noise` and are meant as its `BACKENDS` entries; they fall back to
the reference when the kernel is unavailable. Nothing happens at import. Set
`SPECBENCH_KERNELS=off` to disable the compiled backends; without a compiler they warn once and
fall back to the reference.

    >>> tokens, num_accepted = verify("sps", {}, q, p, x, Noise.draw(g, B, k, V), backend="cpu")
"""

from __future__ import annotations

import ctypes
import functools
import glob
import hashlib
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from specbench_cli.strategies.base import Noise, Strategy, VerifyResult

_DTYPES: tuple = ()  # (torch.float32, torch.int64), filled on first use (no torch at import)
_VerifyResult: Any = None  # strategies.base.VerifyResult, imported on first use
STRATEGY_IDS = {"greedy": 0, "sps": 1, "tas": 2, "cactus": 3, "topk": 4, "interp": 5}
NOISE_IDS = {"race": 0, "icdf": 1}
BACKENDS = ("auto", "torch", "cpu", "cuda")
CPU_SOURCES = ("binding.cpp", "verify_cpu.cpp")
CUDA_SOURCE = "verify_cuda.cu"
CPU_CFLAGS = ["-O3", "-ffp-contract=off", "-fno-trapping-math", "-fopenmp"]
# sm_80 and sm_90 always (CI compiles both); the device's own arch is added at build time.
NVCC_FLAGS = ["-std=c++17", "-O3", "--fmad=false", "-Xcompiler", "-fPIC", "-shared"]
BASE_ARCHS = ("80", "90")


def source_dir() -> Path:
    """Folder with verify.h and friends: `$SPECBENCH_KERNELS_SRC`, else `<repo>/kernels` (or
    its installed copy)."""
    from specbench_cli.data import data_dir

    override = os.environ.get("SPECBENCH_KERNELS_SRC")
    return Path(override) if override else data_dir("kernels")


def cache_dir() -> Path:
    """Build cache, keyed by torch version and machine so incompatible builds never mix."""
    import torch

    root = Path(os.environ.get("SPECBENCH_CACHE", "~/.cache/specbench")).expanduser()
    tag = f"torch-{torch.__version__.replace('+', '-')}-{platform.machine()}"
    return root / "kernels" / tag


def kernels_enabled() -> bool:
    return os.environ.get("SPECBENCH_KERNELS", "on").lower() not in ("0", "off", "false", "no")


def compiler_available() -> bool:
    """Whether a C++ compiler for the CPU twin is on PATH."""
    return any(shutil.which(c) for c in (os.environ.get("CXX", "c++"), "c++", "g++"))


def find_nvcc() -> str | None:
    """`nvcc` from PATH, `$CUDA_HOME/bin` or `/usr/local/cuda*/bin` (newest last wins)."""
    found = shutil.which("nvcc")
    if found:
        return found
    candidates = []
    if os.environ.get("CUDA_HOME"):
        candidates.append(os.path.join(os.environ["CUDA_HOME"], "bin", "nvcc"))
    candidates += sorted(glob.glob("/usr/local/cuda*/bin/nvcc"), reverse=True)
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


def _warn(message: str) -> None:
    from specbench_cli.console import warn

    warn(message)


@functools.cache
def _warn_once(message: str) -> None:
    _warn(message)


def _note(message: str) -> None:
    from specbench_cli.console import err

    err.print(message, style="dim", highlight=False)


def _sources_hash(names: tuple[str, ...]) -> str:
    """Hash of the named sources and every header beside them (a header edit means a rebuild)."""
    digest = hashlib.sha256()
    headers = sorted(p.name for p in source_dir().iterdir() if p.suffix in (".h", ".cuh"))
    for name in (*names, *headers):
        digest.update((source_dir() / name).read_bytes())
    return digest.hexdigest()[:12]


@functools.cache
def _cpu_ops() -> Any | None:
    """Build (first use) and load the CPU twin + binding; None, after one warning, on failure."""
    if not kernels_enabled():
        return None
    import torch

    if not compiler_available():
        _warn("no C++ compiler found; the cpu kernel backend falls back to the PyTorch reference")
        return None
    try:
        from torch.utils import cpp_extension

        build = cache_dir() / "cpu"
        build.mkdir(parents=True, exist_ok=True)
        if not any(build.glob("*.so")):
            _note("compiling the cpu verify kernel (first use, ~15 s)")
        cflags = list(CPU_CFLAGS)
        if platform.machine() in ("x86_64", "AMD64"):
            cflags.append("-march=x86-64-v2")  # portable across CI and dev machines
        cpp_extension.load(
            name="specbench_verify",
            sources=[str(source_dir() / s) for s in CPU_SOURCES],
            extra_cflags=cflags,
            extra_ldflags=["-fopenmp"],  # resolves to torch's own libgomp.so.1 at run time
            build_directory=str(build),
            is_python_module=False,
            verbose=bool(os.environ.get("SPECBENCH_DEBUG")),
        )
        ops = torch.ops.specbench
        ops.verify_cpu.default  # noqa: B018 - fail here if the library did not register
        return ops
    except Exception as exc:  # compiler errors, missing headers, a broken cache
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        _warn(f"could not build the cpu verify kernel ({reason[:160]}); using the reference")
        return None


class _CudaLib:
    def __init__(self, path: Path) -> None:
        self.lib = ctypes.CDLL(str(path))
        self.launcher = ctypes.cast(self.lib.specbench_verify_cuda, ctypes.c_void_p).value
        self.workspace_bytes = self.lib.specbench_verify_cuda_workspace_bytes
        self.workspace_bytes.restype = ctypes.c_int64
        self.workspace_bytes.argtypes = [ctypes.c_int64] * 3
        self.counters: dict[int, torch.Tensor] = {}

    def counters_for(self, device: torch.device, B: int) -> torch.Tensor:
        """Per-device int32 counters, zero between calls (each call leaves them zero)."""
        import torch

        index = device.index if device.index is not None else torch.cuda.current_device()
        have = self.counters.get(index)
        if have is None or have.numel() < B:
            have = torch.zeros(max(B, 64), dtype=torch.int32, device=device)
            self.counters[index] = have
        return have


def build_cuda_library(out: Path, archs: tuple[str, ...] = BASE_ARCHS) -> Path:
    """Compile verify_cuda.cu into a shared library with nvcc (no torch involved)."""
    nvcc = find_nvcc()
    if nvcc is None:
        raise RuntimeError("nvcc not found")
    gencode = []
    for arch in archs:
        gencode += ["-gencode", f"arch=compute_{arch},code=sm_{arch}"]
    gencode += ["-gencode", f"arch=compute_{archs[-1]},code=compute_{archs[-1]}"]  # PTX
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    cmd = [nvcc, *NVCC_FLAGS, *gencode, "-o", str(tmp), str(source_dir() / CUDA_SOURCE)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    os.replace(tmp, out)  # atomic: concurrent builders never load a half-written file
    return out


@functools.cache
def _cuda_lib() -> _CudaLib | None:
    """Build (first use) and load the CUDA library; None without CUDA, nvcc or the binding."""
    if not kernels_enabled():
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    if _cpu_ops() is None:  # the binding lives in the CPU extension
        return None
    major, minor = torch.cuda.get_device_capability()
    archs = tuple(sorted({*BASE_ARCHS, f"{major}{minor}"}))
    name = f"libspecbench_verify_cuda-{_sources_hash((CUDA_SOURCE,))}-sm{'_'.join(archs)}.so"
    path = cache_dir() / "cuda" / name
    try:
        if not path.exists():
            _note("compiling the cuda verify kernel with nvcc (first use, ~30 s)")
            build_cuda_library(path, archs)
        return _CudaLib(path)
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or "").strip().splitlines()[-1:] or ["nvcc failed"]
        _warn(f"could not build the cuda verify kernel ({tail[0][:160]}); using the reference")
    except Exception as exc:
        _warn(f"could not load the cuda verify kernel ({exc}); using the PyTorch reference")
    return None


def cpu_kernel_available() -> bool:
    """True when the CPU twin is built and loaded (builds it on the first call)."""
    return _cpu_ops() is not None


def cuda_kernel_available() -> bool:
    """True when CUDA is present and the CUDA library is built and loaded."""
    return _cuda_lib() is not None


def resolve_backend(backend: str, device: torch.device | str | None = None) -> str:
    """Concrete backend for tensors on `device`: `auto` takes the compiled kernel of that device
    when it builds (it is faster than the reference at every benchmarked shape), else `torch`;
    an explicit `cpu`/`cuda` that cannot be built falls back to `torch` after one warning."""
    import torch

    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    dev = torch.device(device if device is not None else "cpu")
    if backend == "torch":
        return "torch"
    if backend == "auto":
        if dev.type == "cuda":
            return "cuda" if cuda_kernel_available() else "torch"
        return "cpu" if dev.type == "cpu" and cpu_kernel_available() else "torch"
    if dev.type != backend:
        raise ValueError(f"backend {backend!r} cannot run on tensors on {dev}")
    available = cpu_kernel_available() if backend == "cpu" else cuda_kernel_available()
    if not available and backend == "cuda" and kernels_enabled():
        _warn_once("the cuda verify kernel is unavailable; using the PyTorch reference")
    return backend if available else "torch"


def _call(
    name: str,
    params: dict[str, Any],
    target_probs: torch.Tensor,  # [B, k+1, V]
    draft_probs: torch.Tensor | None,  # [B, k, V]
    draft_tokens: torch.Tensor,  # [B, k]
    noise: Noise | None,
    num_drafts: torch.Tensor | None,  # [B]
    target_logits: torch.Tensor | None,  # [B, k+1, V]
    backend: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run a compiled backend; returns (tokens, num_accepted, num_zero_draft_prob)."""
    import torch

    global _DTYPES
    if not _DTYPES:
        _DTYPES = (torch.float32, torch.int64)
    mode = "race" if noise is None else noise.mode
    tensors = (
        target_probs,
        draft_probs,
        draft_tokens,
        None if noise is None else noise.u_acc,
        None if noise is None else noise.e_fin,
        None if noise is None else noise.u_fin,
        num_drafts,
        target_logits,
    )
    for t in tensors:
        if t is not None and not (t.dtype in _DTYPES and t.is_contiguous()):
            tensors = tuple(_dense(t) for t in tensors)  # rare: checked inputs are float32
            break
    args = (
        *tensors,
        STRATEGY_IDS[name],
        NOISE_IDS[mode],
        float(params.get("delta", 0.0)),
        float(params.get("eps", 0.0)),
        float(params.get("alpha", 0.0)),
        float(params.get("alpha", 0.0)),
        int(params.get("k", 1)),
        params.get("bonus") == "argmax",
    )
    if backend == "cpu":
        return _cpu_ops().verify_cpu.default(*args)
    lib = _cuda_lib()
    B, k1, V = target_probs.shape
    workspace = torch.empty(
        lib.workspace_bytes(B, k1 - 1, V), dtype=torch.uint8, device=target_probs.device
    )
    counters = lib.counters_for(target_probs.device, B)
    stream = torch.cuda.current_stream(target_probs.device).cuda_stream
    return _cpu_ops().verify_cuda.default(*args, workspace, counters, lib.launcher, stream)


def _dense(t: torch.Tensor | None) -> torch.Tensor | None:
    """float32 (probabilities, logits, noise) or int64 (ids, counts), contiguous."""
    if t is None:
        return None
    t = t.float() if t.is_floating_point() else t.long()
    return t.contiguous()


def verify(
    name: str,
    params: dict[str, Any] | None,
    target_probs: torch.Tensor,  # [B, k+1, V] float32
    draft_probs: torch.Tensor | None,  # [B, k, V] float32, None = one-hot at draft_tokens
    draft_tokens: torch.Tensor,  # [B, k] long
    noise: Noise | None,  # None only for greedy and tas with bonus=argmax
    num_drafts: torch.Tensor | None = None,  # [B] long
    target_logits: torch.Tensor | None = None,  # [B, k+1, V] (greedy argmax source)
    backend: str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """One verification step on a compiled backend: `(tokens [B, k+1], num_accepted [B])`.

    Same semantics and outputs as `get_strategy(name, **params).verify_with_noise(...)`; inputs
    are not value-checked here (the strategy's `verify*` entry points do that). When the backend
    is unavailable the reference runs instead. On CUDA an invalid draft id or `num_drafts` marks
    its row with `num_accepted = -1` instead of raising (checking on the host would sync).
    """
    if name not in STRATEGY_IDS:
        raise ValueError(f"no kernel for strategy {name!r} (kernels: {', '.join(STRATEGY_IDS)})")
    from specbench_cli.strategies import get_strategy

    r = backend_verify(get_strategy(name, **(params or {})), target_probs, draft_probs,
                       draft_tokens, noise, target_logits, num_drafts, backend=backend)  # fmt: skip
    return r.tokens, r.num_accepted


def backend_verify(
    strategy: Strategy,
    target_probs: torch.Tensor,  # [B, k+1, V] float32, checked
    draft_probs: torch.Tensor | None,  # [B, k, V]
    draft_tokens: torch.Tensor,  # [B, k] long
    noise: Noise | None,
    target_logits: torch.Tensor | None = None,  # [B, k+1, V]
    num_drafts: torch.Tensor | None = None,  # [B]
    *,
    backend: str = "cpu",
) -> VerifyResult:
    """Drop-in for `strategies.base.verify_with_noise` (the `BACKENDS` signature) that runs the
    compiled kernel for `strategy.name` / `strategy.params`, or the reference if unavailable."""
    global _VerifyResult
    if _VerifyResult is None:
        from specbench_cli.strategies.base import VerifyResult

        _VerifyResult = VerifyResult
    if backend == "cpu" and target_probs.device.type == "cpu" and _cpu_ops() is not None:
        resolved = "cpu"  # the common case, without resolve_backend's checks
    else:
        resolved = resolve_backend(backend, target_probs.device)
    if strategy.name not in STRATEGY_IDS or resolved == "torch":
        from specbench_cli.strategies.base import verify_with_noise

        return verify_with_noise(
            strategy, target_probs, draft_probs, draft_tokens, noise, target_logits, num_drafts
        )
    tokens, num_accepted, zero = _call(
        strategy.name, strategy.params, target_probs, draft_probs, draft_tokens, noise,
        num_drafts, target_logits, resolved,
    )  # fmt: skip
    return _VerifyResult(tokens, num_accepted, zero)


# Entries for strategies.base.BACKENDS (same signature as verify_with_noise).
cpu_backend = functools.partial(backend_verify, backend="cpu")
cuda_backend = functools.partial(backend_verify, backend="cuda")
auto_backend = functools.partial(backend_verify, backend="auto")  # per call, by tensor device
