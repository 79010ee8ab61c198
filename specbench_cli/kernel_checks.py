"""Kernel-vs-reference agreement and timing, shared by `specbench kernels` and the tests.

Owns: the random and adversarial verification inputs (zeros in p where q is
positive, one-hot rows, p = q, all accepted, first-position rejection, empty residual,
deterministic drafts, ragged rows; V not a multiple of the kernels' 4096-token tile; B in
{1, 64}; k in {1, 8}), the comparison of a compiled backend with the reference
(`reference_verify`), the classification of a disagreement as tolerated (the reference decision
was within rounding, as each rule judges its own test) or failed, and the benchmark loop behind
`specbench kernels bench`. Does not own the kernels (`kernels.py`), the dispatch
(`backends.py`) or any rule (`strategies/`), and names no rule.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from specbench_cli.backends import CompiledDriver, resolve_backend
from specbench_cli.noise import Noise
from specbench_cli.strategies import Strategy, parse_strategy_spec
from specbench_cli.strategies.base import Row, reference_verify

CASES = ("random", "zeros_in_p", "one_hot", "p_eq_q", "all_accepted", "first_rejection",
         "empty_residual", "deterministic", "ragged")  # fmt: skip
SHAPES = ((1, 1, 4097), (1, 8, 1000), (64, 1, 333), (64, 8, 4097))  # (B, k, V)
ICDF_RTOL = 1e-5  # |cumsum boundary - u Z| <= this * Z
RACE_RTOL = 1e-6  # the kernel's token scores within this of the best score


@dataclass
class Inputs:
    target_probs: Tensor  # [B, k+1, V]
    draft_probs: Tensor | None  # [B, k, V]
    draft_tokens: Tensor  # [B, k]
    noise: Noise | None
    num_drafts: Tensor | None  # [B]
    target_logits: Tensor | None  # [B, k+1, V]

    def to(self, device: torch.device) -> Inputs:
        """The same inputs on `device`."""
        move = (lambda t: None if t is None else t.to(device))  # noqa: E731
        return Inputs(move(self.target_probs), move(self.draft_probs), move(self.draft_tokens),
                      None if self.noise is None else self.noise.to(device),
                      move(self.num_drafts), move(self.target_logits))  # fmt: skip

    def args(self) -> tuple:
        """Positional arguments of a driver, after the strategy."""
        return (self.target_probs, self.draft_probs, self.draft_tokens, self.noise,
                self.target_logits, self.num_drafts)  # fmt: skip


def _normalize(t: Tensor) -> Tensor:
    return t / t.sum(-1, keepdim=True)


def make_inputs(case: str, B: int, k: int, V: int, mode: str, g: torch.Generator,
                strategy: Strategy, scale: float = 3.0, draft_noise: float = 0.7) -> Inputs:
    """One batch of a check case; noise is drawn from `g` in the contract's order."""
    q = torch.softmax(torch.randn(B, k + 1, V, generator=g) * scale, -1)
    p = torch.softmax(q[:, :k].log() + draft_noise * torch.randn(B, k, V, generator=g), -1)
    if case == "zeros_in_p":  # p = 0 on about half the tokens, where q > 0
        keep = torch.rand(B, k, V, generator=g) < 0.5
        keep.scatter_(-1, torch.randint(0, V, (B, k, 1), generator=g), True)
        p = _normalize(p * keep)
    elif case == "one_hot":  # one-hot target rows and one-hot draft rows, half of each
        hot = torch.nn.functional.one_hot(torch.randint(0, V, (B, k + 1), generator=g), V).float()
        pick = torch.rand(B, k + 1, 1, generator=g) < 0.5
        q = torch.where(pick, hot, q)
        hot_p = torch.nn.functional.one_hot(torch.randint(0, V, (B, k), generator=g), V).float()
        p = torch.where(torch.rand(B, k, 1, generator=g) < 0.5, hot_p, p)
    elif case in ("p_eq_q", "empty_residual"):
        p = q[:, :k].clone()
    flat = p.reshape(-1, V)
    x = torch.multinomial(flat, 1, generator=g).reshape(B, k) if B * k else p.new_zeros(B, k)
    x = x.long()
    noise = Noise.draw(g, B, k, V, mode) if strategy.uses_noise else None
    if noise is not None and case in ("all_accepted", "first_rejection", "empty_residual"):
        value = 0.0 if case == "all_accepted" else 1.0  # u = 1: reject every q(x) <= p(x)
        noise = Noise(torch.full_like(noise.u_acc, value), mode, noise.e_fin, noise.u_fin)
    num_drafts = torch.randint(0, k + 1, (B,), generator=g) if case == "ragged" else None
    draft_probs = None if case == "deterministic" else p.contiguous()
    logits = q.log() if strategy.USES_LOGITS else None
    return Inputs(q.contiguous(), draft_probs, x, noise, num_drafts, logits)


@dataclass
class Agreement:
    rows: int = 0
    token_match: int = 0
    accept_match: int = 0
    tolerated: int = 0
    failed: int = 0

    @property
    def token_rate(self) -> float:
        return self.token_match / max(self.rows, 1)

    @property
    def accept_rate(self) -> float:
        return self.accept_match / max(self.rows, 1)


def run_backend(strategy: Strategy, inp: Inputs, backend: str) -> tuple[Tensor, Tensor]:
    """(tokens, num_accepted) from `backend` ("torch" = the reference) on the same inputs."""
    if backend == "torch":
        r = reference_verify(strategy, *inp.args())
    else:
        r = CompiledDriver(backend)(strategy, *inp.to(torch.device(backend)).args())
    return r.tokens.cpu(), r.num_accepted.cpu()


def compare(strategy: Strategy, inp: Inputs, backend: str, into: Agreement) -> None:
    """Add one batch's row-level agreement between `backend` and the reference to `into`."""
    ref_t, ref_a = run_backend(strategy, inp, "torch")
    ker_t, ker_a = run_backend(strategy, inp, backend)
    same_tokens = (ref_t == ker_t).all(1)
    same_accept = ref_a == ker_a
    into.rows += ref_t.shape[0]
    into.token_match += int(same_tokens.sum())
    into.accept_match += int(same_accept.sum())
    for b in torch.nonzero(~same_tokens).flatten().tolist():
        if tolerated(strategy, inp, b, int(ref_a[b]), int(ker_a[b]),
                     int(ref_t[b, ref_a[b]]), int(ker_t[b, max(int(ker_a[b]), 0)])):  # fmt: skip
            into.tolerated += 1
        else:
            into.failed += 1


def tolerated(strategy: Strategy, inp: Inputs, b: int, ref_a: int, ker_a: int,
              ref_tok: int, ker_tok: int) -> bool:
    """Whether row b's disagreement comes from a reference decision within rounding."""
    if ker_a < 0:
        return False
    q = inp.target_probs[b]
    if ref_a != ker_a:  # an accept test at position j went the other way
        j = min(ref_a, ker_a)
        x = int(inp.draft_tokens[b, j])
        p_x = 1.0 if inp.draft_probs is None else float(inp.draft_probs[b, j, x])
        u = float(inp.noise.u_acc[b, j]) if inp.noise is not None else 0.0
        return strategy.decided_by_rounding(q[j], x, p_x, u)
    if not strategy.sampled_final(ref_a >= _n(inp, b)):
        return False  # argmax outputs are exact
    w = _final_weights(strategy, inp, b, ref_a).double()
    if not bool((w > 0).any()):
        w = q[ref_a].double()
    if inp.noise.mode == "race":
        e = inp.noise.e_fin[b].double()
        score = torch.where(w > 0, w / e, torch.full_like(w, -1.0))
        return float(score[ker_tok]) >= float(score.max()) * (1 - RACE_RTOL)
    cum = w.cumsum(0)
    target = float(inp.noise.u_fin[b]) * float(cum[-1])
    lo, hi = sorted((ref_tok, ker_tok))
    gaps = (cum[lo:hi + 1] - target).abs()
    return bool((gaps <= ICDF_RTOL * float(cum[-1])).any())


def _n(inp: Inputs, b: int) -> int:
    k = inp.draft_tokens.shape[1]
    return k if inp.num_drafts is None else int(inp.num_drafts[b])


def _final_weights(strategy: Strategy, inp: Inputs, b: int, a: int) -> Tensor:
    """Reference weights of row b's final token: the residual at row a, or q at the bonus row."""
    q_a = inp.target_probs[b, a]
    if a >= _n(inp, b):
        return q_a
    x = inp.draft_tokens[b, a]
    if inp.draft_probs is None:
        p_a = torch.zeros_like(q_a).index_fill_(0, x[None], 1.0)
    else:
        p_a = inp.draft_probs[b, a]
    row = Row(q_a[None].clone(), p_a[None].clone(), x[None], q_a[x][None], p_a[x][None])
    return strategy.residual(row)[0]


def agreement(backend: str, spec: str, mode: str, rows: int = 1000, seed: int = 0) -> Agreement:
    """Agreement of `backend` with the reference over every case and shape for one spec."""
    strategy = parse_strategy_spec(spec)
    g = torch.Generator().manual_seed(seed)
    result = Agreement()
    per_case = max(1, math.ceil(rows / len(CASES)))
    for case in CASES:
        for B, k, V in SHAPES:
            calls = min(4, per_case) if B == 1 else max(1, math.ceil(per_case / (2 * B)))
            for _ in range(calls):
                compare(strategy, make_inputs(case, B, k, V, mode, g, strategy), backend, result)
    return result


# -- timing -----------------------------------------------------------------------------------


@dataclass
class BenchResult:
    spec: str
    B: int
    k: int
    V: int
    torch_us: float
    kernel_us: float
    graph_us: float | None = None  # GPU: the kernel replayed from a CUDA graph (no launch cost)
    gbps: float = 0.0  # minimal bytes / best kernel time (GPU)
    bw_fraction: float = 0.0  # gbps over the measured copy bandwidth
    copy_gbps: float = 0.0


def must_read_bytes(strategy: Strategy, B: int, k: int, V: int, mode: str) -> int:
    """Bytes the rule must read (docs/kernels.md): two rows for rules that look at the drafted
    tokens only, k+1 rows of q (plus any second pass) for scan rules, plus the race noise row
    when a token is sampled."""
    desc = strategy.kernel
    rows = k + 1 + desc.extra_rows if desc.scans_rows else 2
    noise_row = mode == "race" and strategy.uses_noise
    return 4 * B * V * (rows + noise_row)


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


def bench_grid(specs: list[str], Bs: list[int], ks: list[int], Vs: list[int], mode: str,
               device: str, repeats: int = 0,
               progress: Callable[[str], None] | None = None) -> list[BenchResult]:
    """Time reference and kernel on every shape; outputs are checked equal before timing."""
    dev = torch.device(device)
    backend = resolve_backend(device, dev)
    copy_gbps = _copy_gbps(dev) if dev.type == "cuda" else 0.0
    results = []
    for spec in specs:
        strategy = parse_strategy_spec(spec)
        for B in Bs:
            for k in ks:
                for V in Vs:
                    g = torch.Generator().manual_seed(B * 1000 + k * 10 + V)
                    inp = make_inputs("random", B, k, V, mode, g, strategy,
                                      draft_noise=0.5).to(dev)  # fmt: skip
                    ref = functools.partial(reference_verify, strategy, *inp.args())
                    ker = functools.partial(CompiledDriver(backend), strategy, *inp.args())
                    r0, k0 = ref(), ker()
                    if not torch.equal(r0.tokens, k0.tokens) and progress:
                        progress(f"note: {spec} B={B} k={k} V={V}: kernel tokens differ "
                                 "from the reference on this input")  # fmt: skip
                    n = repeats or _auto_repeats(ref, dev)
                    replay = graphed(ker, dev) if dev.type == "cuda" else None
                    fns = [ref, ker] + ([replay] if replay else [])
                    t_ref, t_ker, *t_graph = time_calls(fns, n, dev)
                    res = BenchResult(spec, B, k, V, t_ref * 1e6, t_ker * 1e6, copy_gbps=copy_gbps)
                    if dev.type == "cuda":
                        res.graph_us = t_graph[0] * 1e6 if t_graph else None
                        best = min(t_ker, *t_graph)
                        res.gbps = must_read_bytes(strategy, B, k, V, mode) / best / 1e9
                        res.bw_fraction = res.gbps / copy_gbps
                    results.append(res)
                    if progress:
                        progress(f"{spec} B={B} k={k} V={V}: torch {res.torch_us:.1f} us, "
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
