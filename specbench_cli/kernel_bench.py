"""Timing of the verify step, reference against compiled kernels: `specbench kernels bench`.

Owns the benchmark loop. For every shape it times, interleaved in one process, the public API a
user calls (`get_strategy(spec, backend=...).verify(q, p, x, generator=g)`) on the `torch`
reference and on the compiled backend, with default arguments (value checks on, one seed drawn
per call) and with `validate=False`, and the same step on already-checked inputs with fixed noise
(the drivers alone, what a kernel can be held to). Tokens are checked equal before timing. On a
GPU it also replays the kernel from a CUDA graph with a cold L2 and reports bandwidth on the
bytes the rule must read (docs/kernels.md).
"""

from __future__ import annotations

import functools
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from specbench_cli.backends import CompiledDriver, resolve_backend
from specbench_cli.kernel_checks import make_inputs
from specbench_cli.strategies import Strategy, get_strategy, parse_strategy_spec
from specbench_cli.strategies.base import REFERENCE

GOAL_SHAPES = ((1, 4, 49152), (64, 8, 128256))  # (B, k, V): the end-to-end goals, >= 5x


@dataclass
class BenchResult:
    spec: str
    B: int
    k: int
    V: int
    torch_us: float  # public API, reference backend, default arguments
    kernel_us: float  # public API, compiled backend, default arguments
    torch_core_us: float  # reference driver on checked inputs, fixed noise, no value checks
    kernel_core_us: float  # compiled driver, same
    torch_unchecked_us: float = 0.0  # public API, reference backend, validate=False
    kernel_unchecked_us: float = 0.0  # public API, compiled backend, validate=False
    graph_us: float | None = None  # GPU: the kernel replayed from a CUDA graph (no launch cost)
    gbps: float = 0.0  # minimal bytes / best kernel time (GPU)
    bw_fraction: float = 0.0  # gbps over the measured copy bandwidth
    copy_gbps: float = 0.0

    @property
    def speedup(self) -> float:
        """End to end: the public API on the compiled backend against the reference."""
        return self.torch_us / self.kernel_us

    @property
    def unchecked_speedup(self) -> float:
        """The same with validate=False."""
        return self.torch_unchecked_us / self.kernel_unchecked_us


def must_read_bytes(strategy: Strategy, B: int, k: int, V: int) -> int:
    """Bytes the rule must read (docs/kernels.md): two rows for rules that look at the drafted
    tokens only, k+1 rows of q (plus any second pass) for scan rules. The noise is computed, not
    read."""
    desc = strategy.kernel
    rows = k + 1 + desc.extra_rows if desc.scans_rows else 2
    return 4 * B * V * rows


def _copy_gbps(device: torch.device) -> float:
    a = torch.empty(256 << 20, dtype=torch.uint8, device=device)
    b = torch.empty_like(a)
    times = []
    for _ in range(10):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        b.copy_(a)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return 2 * a.numel() / statistics.median(times) / 1e9


def graphed(fn: Callable[[], object], device: torch.device) -> Callable[[], object] | None:
    """`fn` captured once in a CUDA graph (returns its replay), or None if it cannot be captured
    (the reference syncs with the host, so only the kernel is graphed)."""
    try:
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):  # warm-up off the capture, as torch's docs require
            for _ in range(3):
                fn()
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        return graph.replay
    except RuntimeError:
        return None


def time_calls(fns: list[Callable[[], object]], repeats: int, device: torch.device) -> list[float]:
    """Median seconds per call of each fn, interleaved round by round after a warm-up."""
    for fn in fns:
        for _ in range(3):
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    flush = None
    if device.type == "cuda":
        l2 = torch.cuda.get_device_properties(device).L2_cache_size
        flush = torch.empty(2 * l2, dtype=torch.uint8, device=device)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            if flush is not None:
                flush.zero_()  # cold L2, outside the timed region
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                samples[i].append(start.elapsed_time(end) / 1e3)
            else:
                t0 = time.perf_counter()
                fn()
                samples[i].append(time.perf_counter() - t0)
    return [statistics.median(s) for s in samples]


def bench_shape(spec: str, B: int, k: int, V: int, device: torch.device, repeats: int = 0,
                progress: Callable[[str], None] | None = None) -> BenchResult:  # fmt: skip
    """Time one shape (see the module docstring)."""
    backend = resolve_backend(device.type, device)
    strategy = parse_strategy_spec(spec)
    g = torch.Generator().manual_seed(B * 1000 + k * 10 + V)
    inp = make_inputs("random", B, k, V, g, strategy, draft_noise=0.5).to(device)
    q, p, x = inp.target_probs, inp.draft_probs, inp.draft_tokens

    def public(name: str, seed: int, validate: bool = True) -> Callable[[], object]:
        verify = get_strategy(strategy.name, backend=name, **strategy.params).verify
        gen = torch.Generator(device).manual_seed(seed)
        return functools.partial(verify, q, p, x, generator=gen, validate=validate)

    api_torch, api_kernel = public("torch", 1), public(backend, 1)
    first_torch, first_kernel = api_torch(), api_kernel()
    if not torch.equal(first_torch.tokens, first_kernel.tokens) and progress:
        progress(f"note: {spec} B={B} k={k} V={V}: kernel tokens differ from the reference")
    core_ref = functools.partial(REFERENCE, strategy, *inp.args())
    core_ker = functools.partial(CompiledDriver(backend), strategy, *inp.args())
    fns = [api_torch, api_kernel, core_ref, core_ker, public("torch", 2, False),
           public(backend, 2, False)]  # fmt: skip
    replay = graphed(core_ker, device) if device.type == "cuda" else None
    n = repeats or _auto_repeats(api_torch, device)
    times = time_calls(fns + ([replay] if replay else []), n, device)
    res = BenchResult(spec, B, k, V, *(1e6 * t for t in times[:6]))
    t_ker, t_graph = times[3], times[6:]
    if device.type == "cuda":
        res.copy_gbps = _copy_gbps(device)
        res.graph_us = t_graph[0] * 1e6 if t_graph else None
        res.gbps = must_read_bytes(strategy, B, k, V) / min(t_ker, *t_graph) / 1e9
        res.bw_fraction = res.gbps / res.copy_gbps
    return res


def bench_grid(specs: list[str], shapes: list[tuple[int, int, int]], device: str,
               repeats: int = 0,
               progress: Callable[[str], None] | None = None) -> list[BenchResult]:  # fmt: skip
    """`bench_shape` for every spec and (B, k, V) shape."""
    results = []
    for spec in specs:
        for B, k, V in shapes:
            res = bench_shape(spec, B, k, V, torch.device(device), repeats, progress)
            results.append(res)
            if progress:
                progress(f"{spec} B={B} k={k} V={V}: public API torch {res.torch_us:.1f} us, "
                         f"kernel {res.kernel_us:.1f} us")  # fmt: skip
    return results


def _auto_repeats(fn: Callable[[], object], device: torch.device) -> int:
    """Enough calls for ~1 s of reference time, between 5 and 200."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return int(min(200, max(5, 1.0 / max(time.perf_counter() - t0, 1e-6))))
