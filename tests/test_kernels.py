"""Compiled verification kernels against the PyTorch reference (docs/kernels.md).

- CPU twin == reference token for token on random and adversarial inputs (zeros in p where q > 0,
  one-hot rows, p = q, all accepted, first-position rejection, empty residual, deterministic and
  ragged drafts, V not a multiple of the 4096-token tile, B in {1, 64}, k in {1, 8}) for every
  strategy, with the same counter-based noise; disagreements are only tolerated within rounding
  and never above 1 in 10^4 rows (here: none expected).
- The logits mode (temperature, top-k and softmax inside the CPU kernel) emits the tokens of the
  reference path (`sampling.py`, then the reference) on every tested input.
- The CPU twin passes the one-step distribution test on its own, in both modes.
- The CUDA kernels, run on CPU threads by tests/cuda_emu.cpp (shuffled CTA order), equal the CPU
  twin bit for bit, value checks included; every .cu file compiles with nvcc for sm_80 and sm_90
  without a stack frame or spills; on a CUDA machine the real kernels equal the CPU twin and a
  captured CUDA graph replays fresh noise from counters advanced on the device (marked `cuda`).
Tests skip cleanly without a C++ compiler, without nvcc, or without CUDA.
"""

from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli
from scipy import stats

from specbench_cli import backends, kernel_checks, kernels
from specbench_cli.noise import Noise
from specbench_cli.sampling import SamplingConfig
from specbench_cli.strategies import get_strategy, parse_strategy_spec
from specbench_cli.strategies.base import VerifyResult

CPU = backends.CompiledDriver("cpu")

REPO = Path(__file__).resolve().parents[1]
SPECS = ["greedy", "sps", "tas", "tas:bonus=argmax", "cactus:delta=0.5", "cactus:delta=0",
         "topk", "topk:k=50", "interp:alpha=0.3", "interp:alpha=1"]  # fmt: skip
needs_compiler = pytest.mark.skipif(not kernels.compiler_available(), reason="no C++ compiler")


@pytest.fixture(scope="module")
def cpu_kernel():
    if not kernels.cpu_kernel_available():
        pytest.skip("the CPU kernel did not build here")


# -- exact agreement with the reference -------------------------------------------------------


@needs_compiler
@pytest.mark.parametrize("spec", SPECS)
def test_cpu_matches_reference(spec: str, cpu_kernel) -> None:
    result = kernel_checks.agreement("cpu", spec, rows=300, seed=len(spec))
    assert result.failed == 0, f"{spec}: {result}"
    assert result.tolerated * 10_000 <= result.rows, f"{spec}: {result}"


@needs_compiler
@pytest.mark.parametrize("spec", SPECS)
def test_cpu_logits_mode_matches_the_reference_path(spec: str, cpu_kernel) -> None:
    """Temperature, top-k and softmax inside the kernel: the tokens of sampling.py + reference."""
    result = kernel_checks.logits_agreement("cpu", spec, rows=300, seed=len(spec))
    assert result.failed == 0 and result.tolerated == 0, f"{spec}: {result}"


@needs_compiler
@pytest.mark.parametrize("spec", ["sps", "greedy", "tas", "topk", "cactus", "interp"])
def test_cpu_bonus_only_and_structure(spec: str, cpu_kernel) -> None:
    """k = 0 is an ordinary decoding step; outputs keep the -1 padding invariants."""
    strategy = parse_strategy_spec(spec)
    g = torch.Generator().manual_seed(3)
    for B, k, V in ((5, 0, 17), (7, 3, 1), (9, 5, 257)):
        inp = kernel_checks.make_inputs("ragged", B, k, V, g, strategy)
        ref = kernel_checks.run_backend(strategy, inp, "torch")
        ker = kernel_checks.run_backend(strategy, inp, "cpu")
        assert torch.equal(ref.tokens, ker.tokens)
        assert torch.equal(ref.num_accepted, ker.num_accepted)
        emitted = (ker.tokens >= 0).sum(1)
        assert torch.equal(emitted, ker.num_accepted + 1)  # only -1 after the emitted token
        assert bool((ker.tokens < V).all())


@needs_compiler
@pytest.mark.parametrize("spec,B,logits", [("cactus:delta=0.3", 64, False), ("tas", 1, False),
                                           ("tas", 16, False), ("sps", 16, True),
                                           ("topk", 4, True)])  # fmt: skip
def test_cpu_result_does_not_depend_on_thread_count(spec: str, B: int, logits: bool,
                                                    cpu_kernel) -> None:  # fmt: skip
    """Threads split rows into vocabulary chunks (TAS even at B=1): results must not move."""
    strategy = parse_strategy_spec(spec, backend="cpu")
    g = torch.Generator().manual_seed(5)
    inp = kernel_checks.make_inputs("random", B, 4, 4097 * 2, g, strategy)
    threads = torch.get_num_threads()
    try:
        outs = []
        for n in (1, 2):
            torch.set_num_threads(n)
            if logits:
                r = strategy.verify_logits(inp.target_probs.log(), inp.draft_probs,
                                           inp.draft_tokens, SamplingConfig(0.9, top_k=40),
                                           noise=inp.noise)  # fmt: skip
            else:
                r = kernel_checks.run_backend(strategy, inp, "cpu")
            outs.append(r)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(outs[0].tokens, outs[1].tokens)
    assert torch.equal(outs[0].num_accepted, outs[1].num_accepted)


@needs_compiler
@pytest.mark.parametrize("spec", SPECS)
def test_verify_rows_lists_entry_equals_verify_logits(spec: str, cpu_kernel) -> None:
    """The engine's list-in, list-out entry (`Strategy.verify_rows`, `kernels/binding_rows.cpp`)
    gives each row the accepted count and emitted token of `verify_logits` on the padded
    tensors, on the same kernel, for every sampling setting, ragged and full drafts, with and
    without draft laws; on the reference driver it is `verify_logits` by construction."""
    strategy = parse_strategy_spec(spec, backend="cpu")
    g = torch.Generator().manual_seed(len(spec))
    for cfg in kernel_checks.SAMPLINGS:
        for B, k, V in ((1, 4, 4097), (5, 3, 1000), (3, 0, 50)):
            for call in range(3):
                logits = torch.randn(B, k + 1, V, generator=g) * 3
                draft = torch.softmax(logits[:, :k] + torch.randn(B, k, V, generator=g), -1)
                x = torch.multinomial(draft.reshape(-1, V), 1, generator=g).reshape(B, k) \
                    if k else torch.zeros(B, 0, dtype=torch.long)  # fmt: skip
                n = torch.randint(0, k + 1, (B,), generator=g).tolist() if call else [k] * B
                drafts = [x[b, : n[b]].tolist() for b in range(B)]
                seeds = torch.randint(0, 2**63 - 1, (B,), generator=g).tolist()
                counters = torch.randint(0, 2**40, (B,), generator=g).tolist()
                p = draft if call == 2 else None
                got = strategy.verify_rows(logits, p, drafts, cfg, seeds, counters)
                noise = Noise(torch.tensor(seeds), torch.tensor(counters))
                want = strategy.verify_logits(
                    logits, p, x, cfg, noise=noise, validate=False,
                    num_drafts=torch.tensor(n) if call else None)  # fmt: skip
                accepted = want.num_accepted.tolist()
                emitted = [want.tokens[b, a].item() for b, a in enumerate(accepted)]
                assert got == (accepted, emitted), (cfg, B, k, call)


@needs_compiler
def test_verify_rows_rejects_bad_input(cpu_kernel) -> None:
    sps = get_strategy("sps", backend="cpu")
    logits, cfg = torch.zeros(1, 3, 8), SamplingConfig(1.0)
    with pytest.raises(RuntimeError, match="outside"):
        sps.verify_rows(logits, None, [[8, 1]], cfg, [1], [0])
    with pytest.raises(ValueError, match="B seeds and B counters"):
        sps.verify_rows(logits, None, [[1, 2]], cfg, [], [])
    with pytest.raises(ValueError, match="B\\*k ids"):
        sps.verify_rows(logits, None, [[1, 2, 3]], cfg, [1], [0])


@needs_compiler
def test_cpu_rejects_bad_ids(cpu_kernel) -> None:
    q = torch.full((1, 2, 4), 0.25)
    noise = Noise(torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long))
    sps = get_strategy("sps", backend="cpu")
    with pytest.raises(RuntimeError, match="outside"):
        sps.verify_with_noise(q, None, torch.tensor([[4]]), noise, validate=False)
    with pytest.raises(RuntimeError, match="num_drafts"):
        sps.verify_with_noise(q, None, torch.tensor([[1]]), noise, num_drafts=torch.tensor([2]),
                              validate=False)  # fmt: skip


def test_tolerance_classifier() -> None:
    """A disagreement counts as tolerated only where the reference decision is a tie."""
    strategy = parse_strategy_spec("sps")
    noise = Noise(torch.tensor([11]), torch.tensor([0]))
    u = float(noise.accept_uniforms(1)[0, 0])
    for q_x, ok in ((u * 0.5, True), (min(u * 0.5 + 0.1, 0.9), False)):  # u p = q(x): a tie
        q = torch.tensor([[[q_x, 1 - q_x, 0.0], [0.5, 0.5, 0.0]]])
        inp = kernel_checks.Inputs(q, torch.tensor([[[0.5, 0.5, 0.0]]]), torch.tensor([[0]]),
                                   noise, None, None)  # fmt: skip
        ref = VerifyResult(torch.tensor([[0, 1]]), torch.tensor([1]))
        ker = VerifyResult(torch.tensor([[1, -1]]), torch.tensor([0]))
        result = kernel_checks.Agreement()
        kernel_checks.compare_results(strategy, inp, ref, ker, result)
        assert (result.tolerated, result.failed) == ((1, 0) if ok else (0, 1))


def test_fallback_to_reference_without_kernel(monkeypatch) -> None:
    monkeypatch.setattr(kernels, "_cpu_ops", lambda: None)
    assert backends.resolve_backend("auto", "cpu") == "torch"
    assert backends.resolve_backend("cpu", "cpu") == "torch"
    strategy = parse_strategy_spec("sps")
    g = torch.Generator().manual_seed(0)
    inp = kernel_checks.make_inputs("random", 4, 3, 50, g, strategy)
    ref = kernel_checks.run_backend(strategy, inp, "torch")
    got = parse_strategy_spec("sps", backend="cpu").verify_with_noise(
        inp.target_probs, inp.draft_probs, inp.draft_tokens, inp.noise)
    assert torch.equal(ref.tokens, got.tokens) and torch.equal(ref.num_accepted, got.num_accepted)
    with pytest.raises(ValueError, match="unknown backend"):
        backends.resolve_backend("gpu", "cpu")


# -- the one-step law on the CPU kernel ---------------------------------------------------

ETA = 1e-6
STAT_SPECS = ["sps", "tas", "tas:bonus=argmax", "cactus:delta=0.3", "topk:k=3", "interp", "greedy"]


def _dist(values) -> torch.Tensor:
    values = np.asarray(values, dtype=np.float64)
    return torch.from_numpy(values / values.sum()).float()


def _cases(V: int):
    rng = np.random.default_rng(V)
    low = np.arange(V) < V // 2
    same = _dist(rng.dirichlet([1.0] * V))
    return [
        ("dirichlet", _dist(rng.dirichlet([0.5] * V)), _dist(rng.dirichlet([1.0] * V))),
        ("p=q", same, same.clone()),
        ("q one-hot", _dist(np.eye(V)[V - 1]), _dist(rng.dirichlet([1.0] * V))),
        ("p one-hot", _dist(rng.dirichlet([1.0] * V)), None),
        ("zeros in p", _dist(rng.dirichlet([1.0] * V)), _dist(rng.dirichlet([1.0] * V) * low)),
        ("zeros in q", _dist(rng.dirichlet([1.0] * V) * low), _dist(rng.dirichlet([1.0] * V))),
    ]


def _assert_follows(counts: np.ndarray, law: np.ndarray, what: str) -> None:
    N, V = counts.sum(), len(law)
    outside = np.flatnonzero((law <= 1e-12) & (counts > 0))
    assert outside.size == 0, f"{what}: emitted ids {outside.tolist()} of probability 0"
    bound = math.sqrt((V * math.log(2) + math.log(1 / ETA)) / (2 * N))
    tv = 0.5 * np.abs(counts / N - law).sum()
    assert tv <= bound, f"{what}: TV {tv:.5f} > {bound:.5f}"
    expected = law * N
    keep = expected >= 5
    obs, exp = list(counts[keep]), list(expected[keep])
    if (~keep).any() and expected[~keep].sum() > 0:
        obs.append(counts[~keep].sum())
        exp.append(expected[~keep].sum())
    if len(exp) > 1:
        chi2 = sum((o - e) ** 2 / e for o, e in zip(obs, exp, strict=True))
        p_value = stats.chi2.sf(chi2, len(exp) - 1)
        assert p_value > ETA, f"{what}: chi-square p-value {p_value:.3g}"


@needs_compiler
@pytest.mark.parametrize("logits", [False, True])
@pytest.mark.parametrize("spec", STAT_SPECS)
def test_cpu_one_step_law(spec: str, logits: bool, cpu_kernel) -> None:
    """The emitted law of the CPU kernel, from probabilities or from their logarithms (the
    logits mode's own softmax)."""
    strategy = parse_strategy_spec(spec, backend="cpu")
    V, N = 8, 60_000
    for i, (case, q, p) in enumerate(_cases(V)):
        g = torch.Generator().manual_seed(1000 * i + len(spec))
        draft_id = int(q.argsort(descending=True)[1])
        p_law = torch.zeros(V).index_fill_(0, torch.tensor(draft_id), 1.0) if p is None else p
        x = torch.multinomial(p_law, N, replacement=True, generator=g)[:, None]
        target = torch.stack([q, _dist(np.arange(1, V + 1))])[None].expand(N, 2, V).contiguous()
        draft = None if p is None else p[None, None].expand(N, 1, V).contiguous()
        if logits:
            r = strategy.verify_logits(target.log(), draft, x, SamplingConfig(1.0), g)
        else:
            r = strategy.verify(target, draft, x, g)
        what = f"{spec} {'logits' if logits else 'probs'} {case}"
        first = torch.bincount(r.tokens[:, 0], minlength=V).numpy()
        _assert_follows(first, strategy.output_distribution(q, p_law).numpy(), what)
        accepted = int((r.num_accepted == 1).sum())
        slack = math.sqrt(math.log(2 / ETA) / (2 * N))
        assert abs(accepted / N - strategy.acceptance_probability(q, p_law)) <= slack, what


# -- CUDA: emulated on CPU threads, compiled with nvcc, and on a real device ------------------


class _Args(ctypes.Structure):  # kernels/verify.h VerifyArgs
    _fields_ = [("B", ctypes.c_int64), ("k", ctypes.c_int64), ("V", ctypes.c_int64),
                ("strategy", ctypes.c_int32), ("validate", ctypes.c_int32),
                ("cactus_delta", ctypes.c_float), ("tas_eps", ctypes.c_float),
                ("tas_alpha", ctypes.c_float), ("interp_lambda", ctypes.c_float),
                ("interp_rest", ctypes.c_float), ("tas_bonus_argmax", ctypes.c_int32),
                ("topk_k", ctypes.c_int64), ("target_is_logits", ctypes.c_int32),
                ("draft_is_logits", ctypes.c_int32), ("temperature", ctypes.c_float),
                ("top_k", ctypes.c_int64)] + [
        (name, ctypes.c_void_p) for name in (
            "target", "draft", "draft_tokens", "seeds", "counters", "num_drafts",
            "target_logits", "tokens", "num_accepted")
    ]  # fmt: skip


@pytest.fixture(scope="module")
def cuda_emulator(tmp_path_factory):
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    lib = tmp_path_factory.mktemp("emu") / "libcuda_emu.so"
    cmd = [cxx, "-std=c++20", "-O1", "-pthread", "-fPIC", "-shared", "-ffp-contract=off",
           "-Wno-unknown-pragmas", "-o", str(lib), str(REPO / "tests" / "cuda_emu.cpp")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"the CUDA emulator did not build: {done.stderr[-300:]}")
    handle = ctypes.CDLL(str(lib))
    handle.specbench_verify_cuda_emulated.restype = ctypes.c_int32
    return handle


def _emulate(lib, strategy, inp: kernel_checks.Inputs, seed: int, validate: bool = False):
    """(tokens, num_accepted, value-check flag) of the emulated CUDA kernels."""
    d = strategy.kernel
    q = inp.target_probs
    B, k1, V = q.shape
    out = [torch.empty(B, k1, dtype=torch.long), torch.empty(B, dtype=torch.long)]
    noise = inp.noise
    ptr = lambda t: None if t is None else t.data_ptr()  # noqa: E731
    args = _Args(
        B, k1 - 1, V, d.policy, int(validate), d.delta, d.tas_eps, d.tas_alpha, d.interp_alpha,
        float(np.float32(1.0 - d.interp_alpha)), int(d.bonus_argmax), d.topk, 0, 0, 1.0, 0,
        ptr(q), ptr(inp.draft_probs), ptr(inp.draft_tokens),
        ptr(noise and noise.seeds.contiguous()), ptr(noise and noise.counters.contiguous()),
        ptr(inp.num_drafts), ptr(inp.target_logits), *(ptr(t) for t in out),
    )  # fmt: skip
    flag = ctypes.c_int32(0)
    status = lib.specbench_verify_cuda_emulated(ctypes.byref(args), seed, ctypes.byref(flag))
    assert status == 0  # 99: a ticket was not left at zero
    return (*out, flag.value)


@needs_compiler
@pytest.mark.parametrize("spec", ["greedy", "sps", "tas", "cactus:delta=0.5", "topk", "interp"])
def test_cuda_kernels_emulated_match_cpu(spec: str, cpu_kernel, cuda_emulator) -> None:
    """The CUDA kernels' logic (tiles, reductions, scans, last-CTA combine, Philox noise) == the
    CPU twin."""
    strategy = parse_strategy_spec(spec)
    g = torch.Generator().manual_seed(11)
    runs = [(c, s) for c in ("random", "empty_residual", "ragged", "deterministic")
            for s in ((2, 3, 9000), (3, 1, 100))] + [("random", (1, 0, 5))]  # fmt: skip
    for seed, (case, (B, k, V)) in enumerate(runs):
        inp = kernel_checks.make_inputs(case, B, k, V, g, strategy)
        cpu = CPU(strategy, *inp.args())
        tokens, accepted, _ = _emulate(cuda_emulator, strategy, inp, seed)
        what = f"{spec} {case} B={B} k={k} V={V}"
        assert torch.equal(cpu.tokens, tokens), what
        assert torch.equal(cpu.num_accepted, accepted), what


@needs_compiler
def test_cuda_value_checks_emulated(cuda_emulator) -> None:
    """The check kernel flags exactly the inputs the reference refuses."""
    strategy = parse_strategy_spec("greedy")
    g = torch.Generator().manual_seed(2)
    good = kernel_checks.make_inputs("ragged", 3, 2, 300, g, strategy)
    assert _emulate(cuda_emulator, strategy, good, 0, validate=True)[2] == 0
    for poke, where in ((-0.1, "target_probs"), (float("nan"), "draft_probs"),
                        (2.0, "target_probs"), (float("nan"), "target_logits")):  # fmt: skip
        bad = kernel_checks.make_inputs("random", 3, 2, 300, g, strategy)
        getattr(bad, where)[1, 1, 7] = poke
        assert _emulate(cuda_emulator, strategy, bad, 0, validate=True)[2] == 1, (poke, where)


def test_every_cu_file_compiles_for_sm80_and_sm90(tmp_path) -> None:
    nvcc = kernels.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found on PATH or in /usr/local/cuda*/bin")
    sources = sorted((REPO / "kernels").glob("*.cu"))
    assert sources, "no .cu file under kernels/"
    flags = [f for f in kernels.NVCC_FLAGS if f != "-shared"]  # the real build's flags
    for src in sources:
        cmd = [nvcc, *flags, "-gencode", "arch=compute_80,code=sm_80", "-gencode",
               "arch=compute_90,code=sm_90", "-Xptxas", "-v", "-c", str(src), "-o",
               str(tmp_path / (src.stem + ".o"))]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, f"nvcc failed on {src.name}:\n{done.stderr[-2000:]}"
        # ptxas reports per kernel and arch: no local-memory stack frame, no register spills
        usage = [line.strip() for line in done.stderr.splitlines() if "spill stores" in line]
        assert usage and all(u == "0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads"
                             for u in usage), f"{src.name}: {usage}"  # fmt: skip


cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.cuda
@cuda_only
@pytest.mark.parametrize("spec", SPECS)
def test_cuda_matches_cpu_and_reference(spec: str) -> None:
    if not kernels.cuda_kernel_available():
        pytest.fail("CUDA is present but the CUDA kernel did not build")
    strategy = parse_strategy_spec(spec)
    g = torch.Generator().manual_seed(7)
    for case in kernel_checks.CASES:
        for B, k, V in ((64, 8, 4097), (8, 4, 32000), (4, 8, 128256), (1, 1, 151936)):
            inp = kernel_checks.make_inputs(case, B, k, V, g, strategy)
            cpu = kernel_checks.run_backend(strategy, inp, "cpu")
            runs = [kernel_checks.run_backend(strategy, inp, "cuda") for _ in range(3)]
            for r in runs:  # identical, and tickets were left at zero
                assert torch.equal(cpu.tokens, r.tokens.cpu()), f"{spec} {case} B={B} k={k} V={V}"
                assert torch.equal(cpu.num_accepted, r.num_accepted.cpu())
    result = kernel_checks.agreement("cuda", spec, rows=2000, seed=1)
    assert result.failed == 0 and result.tolerated * 10_000 <= result.rows, str(result)


@pytest.mark.cuda
@cuda_only
def test_cuda_graph_replays_fresh_noise_from_device_counters() -> None:
    """Seeds and counters live on the device: a captured step that also advances the counters
    replays new noise each time, the noise the CPU kernel computes for those counters."""
    strategy = get_strategy("sps", backend="cuda")
    g = torch.Generator().manual_seed(3)
    inp = kernel_checks.make_inputs("random", 8, 4, 32000, g, strategy)
    dev = torch.device("cuda")
    q, p, x = (t.to(dev) for t in (inp.target_probs, inp.draft_probs, inp.draft_tokens))
    seeds, counters = inp.noise.seeds.to(dev), torch.zeros(8, dtype=torch.long, device=dev)
    noise = Noise(seeds, counters)

    def step():
        r = strategy.verify_with_noise(q, p, x, noise, validate=False)
        counters.add_(1)
        return r

    out = step()  # warm-up outside the capture: counters 0 -> 1
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step()
    counters.fill_(1)
    for counter in (1, 2, 3):
        graph.replay()
        torch.cuda.synchronize()
        want = get_strategy("sps", backend="cpu").verify_with_noise(
            inp.target_probs, inp.draft_probs, inp.draft_tokens,
            Noise(inp.noise.seeds, torch.full((8,), counter)))
        assert torch.equal(out.tokens.cpu(), want.tokens), counter


def test_gpu_goal_lines_judge_the_graph_time() -> None:
    """The GPU kernel goals read the CUDA-graph time when there is one, else the eager time."""
    from specbench_cli.commands.kernels import _gpu_goals
    from specbench_cli.kernel_bench import BenchResult

    lines = _gpu_goals([
        BenchResult("sps", 1, 4, 32000, 900.0, 30.0, 300.0, 9.0, graph_us=5.5),
        BenchResult("sps", 8, 4, 32000, 900.0, 30.0, 300.0, 7.0),
        BenchResult("sps", 64, 8, 128256, 9000.0, 90.0, 1200.0, 40.0, graph_us=29.0),
        BenchResult("sps", 64, 8, 128256, 9000.0, 90.0, 500.0, 40.0, graph_us=29.0),
        BenchResult("sps", 64, 4, 32000, 900.0, 30.0, 300.0, 9.0),
    ])
    assert [line.endswith("NOT met") for line in lines] == [False, True, False, True]
    assert "5.5 us" in lines[0] and "41.4x" in lines[2]


@pytest.mark.parametrize("args,fragment", [
    (["check", "-s", "nope"], "unknown strategy"),
    (["check", "--rows", "0"], "--rows"),
    (["bench", "-s", "cactus:delta=-1"], "delta must be >= 0"),
    (["bench", "-B", "0"], "-B values"),
])
def test_kernels_commands_reject_bad_input(args: list[str], fragment: str) -> None:
    result = run_cli("kernels", *args)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert lines[-1].startswith("Error:") and fragment in lines[-1]
