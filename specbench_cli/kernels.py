"""Python side of the compiled verification kernels in `kernels/` (docs/kernels.md).

Owns: finding the C++/CUDA sources, building them on first use into the cache
(`$SPECBENCH_CACHE/kernels`), loading them once (`functools.cache`), the availability flags, and
`launch`, which runs one shape-checked step on a compiled backend given a rule's `KernelDesc`.
It knows no rule by name and imports no strategy: `specbench_cli.backends` decides when a kernel
runs and falls back to the PyTorch reference, which defines the semantics.

Layers: `kernels/philox.h` (the noise) and `kernels/verify.h` (policy math shared by both
backends) -> `verify_cpu.cpp` + `cpu_*.h` (C++ twin, OpenMP) and `verify_cuda.cu` +
`cuda_common.cuh` (torch-free CUDA, extern "C") -> `binding.cpp` (the torch-aware ops:
`torch.ops.specbench.verify_cpu` and `verify_cuda`) and `binding_rows.cpp` (the engine's list-in,
list-out entry, `verify_rows`) -> here. The CPU twin and the bindings build with
`torch.utils.cpp_extension.load` (g++, ~30 s once); the CUDA library is built by `nvcc`
directly and loaded with ctypes only when CUDA is present; its launcher address and the current
stream reach the binding as integers.
Nothing happens at import. `SPECBENCH_KERNELS=off` disables the compiled backends; without a
compiler they warn once and the reference runs.
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

    from specbench_cli.noise import Noise
    from specbench_cli.strategies.base import KernelDesc

# kernels/verify.h `enum Status`: what a launch reports about its inputs
BAD_DRAFT_TOKEN, BAD_NUM_DRAFTS, BAD_VALUES = 2, 3, 4
STATUS_TEXT = {BAD_DRAFT_TOKEN: "a draft token id is outside [0, V)",
               BAD_NUM_DRAFTS: "num_drafts outside [0, k]",
               BAD_VALUES: "an input value failed the checks"}  # fmt: skip
CPU_SOURCES = ("binding.cpp", "binding_rows.cpp", "verify_cpu.cpp", "few_row_matmul.cpp")
CUDA_SOURCE = "verify_cuda.cu"
CPU_CFLAGS = ["-O3", "-ffp-contract=off", "-fno-trapping-math", "-fopenmp"]
# sm_80 and sm_90 always (CI compiles both); the device's own arch is added at build time.
NVCC_FLAGS = ["-std=c++17", "-O3", "--fmad=false", "-Xcompiler", "-fPIC", "-shared"]
BASE_ARCHS = ("80", "90")


def source_dir() -> Path:
    """Folder with verify.h and friends: `$SPECBENCH_KERNELS_SRC`, else `<repo>/kernels` (or
    its installed copy)."""
    from specbench_cli.paths import data_dir

    override = os.environ.get("SPECBENCH_KERNELS_SRC")
    return Path(override) if override else data_dir("kernels")


def cache_dir() -> Path:
    """Build cache, keyed by torch version and machine so incompatible builds never mix."""
    import torch

    from specbench_cli.paths import cache_dir as cache_root

    tag = f"torch-{torch.__version__.replace('+', '-')}-{platform.machine()}"
    return cache_root("kernels", tag)


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
def warn_once(message: str) -> None:
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


def _cpu_ops() -> Any | None:
    """`torch.ops.specbench` once the CPU extension is loaded, else None."""
    import torch

    return None if _cpu_extension() is None else torch.ops.specbench


def _cpu_extension() -> Any | None:
    """The CPU extension when the compiled backends are on (`SPECBENCH_KERNELS`), else None."""
    return _built_cpu_extension() if kernels_enabled() else None


def few_row_linear() -> Any | None:
    """The few-row matmul of the CPU extension (`kernels/few_row_matmul.cpp`), or None when it
    cannot be built. Not tied to `SPECBENCH_KERNELS`, which chooses how steps are verified:
    `cpu_matmul` has its own switch."""
    module = _built_cpu_extension()
    return None if module is None else module.few_row_linear


@functools.cache
def _built_cpu_extension() -> Any | None:
    """Build (first use) and load the CPU twin + bindings: the extension's Python module
    (`verify_rows`, `few_row_linear`), its ops registered in `torch.ops.specbench`; None, after
    one warning, on failure."""
    import torch

    if not compiler_available():
        _warn("no C++ compiler found; the cpu kernels fall back: verification to the PyTorch "
              "reference, linear layers to torch.mm")
        return None
    try:
        from torch.utils import cpp_extension

        # one folder per source version: clones with different kernels never rebuild each other's
        build = cache_dir() / f"cpu-{_sources_hash(CPU_SOURCES)}"
        build.mkdir(parents=True, exist_ok=True)
        if not any(build.glob("*.so")):
            _note("compiling the cpu kernels (first use, ~40 s)")
        cflags = list(CPU_CFLAGS)
        if platform.machine() in ("x86_64", "AMD64"):
            cflags.append("-march=x86-64-v2")  # portable across CI and dev machines
        module = cpp_extension.load(
            name="specbench_verify",
            sources=[str(source_dir() / s) for s in CPU_SOURCES],
            extra_cflags=cflags,
            extra_ldflags=["-fopenmp"],  # resolves to torch's own libgomp.so.1 at run time
            build_directory=str(build),
            is_python_module=True,
            verbose=bool(os.environ.get("SPECBENCH_DEBUG")),
        )
        torch.ops.specbench.verify_cpu.default  # noqa: B018 - fail here if the ops did not register
        return module
    except Exception as exc:  # compiler errors, missing headers, a broken cache
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        _warn(f"could not build the cpu kernels ({reason[:160]}); verification uses the reference, "
              "linear layers torch.mm")
        return None


class _CudaLib:
    def __init__(self, path: Path) -> None:
        self.lib = ctypes.CDLL(str(path))
        self.launcher = ctypes.cast(self.lib.specbench_verify_cuda, ctypes.c_void_p).value
        self.workspace_bytes = self.lib.specbench_verify_cuda_workspace_bytes
        self.workspace_bytes.restype = ctypes.c_int64
        self.workspace_bytes.argtypes = [ctypes.c_int64] * 3
        self.tickets: dict[int, torch.Tensor] = {}
        self.flags: dict[int, torch.Tensor] = {}

    def tickets_for(self, device: torch.device, B: int) -> torch.Tensor:
        """Per-device int32 last-block tickets, zero between calls (each call leaves them zero)."""
        import torch

        index = _device_index(device)
        have = self.tickets.get(index)
        if have is None or have.numel() < B:
            have = torch.zeros(max(B, 64), dtype=torch.int32, device=device)
            self.tickets[index] = have
        return have

    def flags_for(self, device: torch.device) -> torch.Tensor:
        """Per-device int32 word the value checks set; zero between calls (read and cleared)."""
        import torch

        index = _device_index(device)
        if index not in self.flags:
            self.flags[index] = torch.zeros(1, dtype=torch.int32, device=device)
        return self.flags[index]


def _device_index(device: torch.device) -> int:
    import torch

    return device.index if device.index is not None else torch.cuda.current_device()


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


def launch(
    backend: str,
    desc: KernelDesc,
    target: torch.Tensor,  # [B, k+1, V] float32: probabilities, or raw logits (logits mode)
    draft: torch.Tensor | None,  # [B, k, V] float32 probabilities or logits, None = one-hot
    draft_tokens: torch.Tensor,  # [B, k] long
    noise: Noise | None,  # None only for rules that draw no randomness
    num_drafts: torch.Tensor | None = None,  # [B] long
    target_logits: torch.Tensor | None = None,  # [B, k+1, V] (the greedy argmax source)
    *,
    logits: tuple[bool, float, int] | None = None,  # (draft is logits, temperature, top-k)
    validate: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """`(tokens [B, k+1], num_accepted [B], status)` of one step on the built `cpu` or `cuda`
    kernel; `logits` asks the CPU kernel for the logits mode (temperature and top-k processing).

    A nonzero status reports the inputs (`BAD_DRAFT_TOKEN`, `BAD_NUM_DRAFTS` and, with
    `validate`, `BAD_VALUES`; only then are the outputs valid). On CUDA an invalid draft id or
    `num_drafts` marks its row with `num_accepted = -1` instead (checking on the host would
    sync), and `validate` syncs to read the value checks' flag.
    """
    import torch

    tensors = (target, draft, draft_tokens, None if noise is None else noise.seeds,
               None if noise is None else noise.counters, num_drafts, target_logits)  # fmt: skip
    for t in tensors:
        if t is not None and not (t.dtype in (torch.float32, torch.int64) and t.is_contiguous()):
            tensors = tuple(_dense(t) for t in tensors)  # rare: checked inputs are float32
            break
    args = (*tensors, desc.policy, *desc.binding_args())
    if backend == "cpu":
        draft_logits, temperature, top_k = logits if logits is not None else (False, 1.0, 0)
        return _cpu_ops().verify_cpu.default(*args, logits is not None, draft_logits, temperature,
                                             top_k, validate)  # fmt: skip
    lib = _cuda_lib()
    B, k1, V = target.shape
    workspace = torch.empty(lib.workspace_bytes(B, k1 - 1, V), dtype=torch.uint8,
                            device=target.device)  # fmt: skip
    flags = lib.flags_for(target.device)
    stream = torch.cuda.current_stream(target.device).cuda_stream
    tokens, accepted, status = _cpu_ops().verify_cuda.default(
        *args, validate, workspace, lib.tickets_for(target.device, B), flags, lib.launcher, stream)
    if validate and bool(flags[0]):  # the one sync validation costs on the device
        flags.zero_()
        status = status or BAD_VALUES
    return tokens, accepted, status


def verify_rows(
    desc: KernelDesc,
    target_logits: torch.Tensor,  # [B, k+1, V] raw logits on the CPU
    draft_probs: torch.Tensor | None,  # [B, k, V], None = one-hot drafts
    draft_tokens: list[int],  # B*k ids, row-major, padded past each row's count
    num_drafts: list[int],  # B counts, or [] when every row drafted k
    seeds: list[int],  # B Philox keys (ignored by rules without noise)
    counters: list[int],  # B step counters
    temperature: float,
    top_k: int,
) -> tuple[int, list[int], list[int]]:
    """`(status, accepted [B], emitted [B])` of one logits-mode step on the CPU twin, lists in
    and out (`kernels/binding_rows.cpp`: the engine's entry, which skips the torch ops whose
    cold start after a forward pass costs more than the kernel). A nonzero status reports bad
    ids or counts (`STATUS_TEXT`); the lists are then meaningless."""
    return _cpu_extension().verify_rows(
        _dense(target_logits), _dense(draft_probs), draft_tokens, num_drafts, seeds, counters,
        desc.policy, *desc.binding_args(), temperature, top_k)  # fmt: skip


def _dense(t: torch.Tensor | None) -> torch.Tensor | None:
    """float32 (probabilities, logits) or int64 (ids, counts, seeds), contiguous; `t` itself
    when it already is (the engine's logits are)."""
    import torch

    if t is None or (t.dtype in (torch.float32, torch.int64) and t.is_contiguous()):
        return t
    t = t.float() if t.is_floating_point() else t.long()
    return t.contiguous()
