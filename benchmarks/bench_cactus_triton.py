"""specbench's Cactus kernel side by side with the Cactus authors' Triton kernel.

The Triton kernel (MIT) is not part of specbench. Bring it for the benchmark only, into the
ignored folder `.cactus/`:  git clone https://github.com/MANGA-UOFA/Cactus .cactus

GPU (default when CUDA is present): for every B x k x V, on identical inputs, times the Triton
kernel (`fused_cactus`, autotuned and warmed up), specbench's CUDA kernel (eager, and replayed
from a CUDA graph) and the PyTorch reference, with CUDA events and a cold L2; prints medians.
The Triton kernel takes the bonus tokens as an input, so its time leaves out the bonus sampling
that specbench's kernel does itself.

Both devices: a law check. The two kernels draw different randomness, so tokens differ call by
call, but on one fixed input row repeated N times the outcome (accepted length, emitted token)
must follow the same law: a chi-square homogeneity test. Without a GPU the Triton kernel runs in
Triton's interpreter (TRITON_INTERPRET=1, set here; needs the `triton` package) against the CPU
kernel, on a small vocabulary.

    python benchmarks/bench_cactus_triton.py                  # GPU: timings + law check
    python benchmarks/bench_cactus_triton.py --device cpu     # law check only, interpreted
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def load_triton_kernel(folder: Path, interpret: bool) -> Any:
    """The `rejection_sampling` module of a Cactus checkout, imported from its file."""
    path = folder / "cactus" / "triton" / "rejection_sampling.py"
    if not path.is_file():
        sys.exit(f"error: {path} not found; git clone https://github.com/MANGA-UOFA/Cactus "
                 f"{folder} (or pass --cactus DIR)")  # fmt: skip
    if interpret:
        os.environ["TRITON_INTERPRET"] = "1"  # read when triton is imported
    spec = importlib.util.spec_from_file_location("cactus_rejection_sampling", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:  # triton itself is missing
        sys.exit(f"error: cannot import the Triton kernel ({exc}); pip install triton")
    return module


def run_triton(mod: Any, q, p, x, bonus, delta: float, interpret: bool):
    """(tokens [B, k+1], num_accepted [B]) from the Triton kernel. Interpreted, the autotuner
    cannot benchmark (no GPU), so the jitted kernel is called with one block size."""
    import torch

    if not interpret:
        return mod.fused_cactus(p, x, q, bonus, delta=delta)
    B, k, V = p.shape
    out = torch.empty(B, k + 1, dtype=torch.int64)
    acc = torch.zeros(B, dtype=torch.int64)
    seed = int(torch.randint(0, 2**31, (1,)).item())
    block = 1 << max(4, (V - 1).bit_length())
    mod._kernel.fn[(B,)](p, x, q, bonus, out, acc, seed, k, V, delta, 1 + B // 4,
                         BLOCK_SIZE=block)  # fmt: skip
    return out, acc


def outcomes(tokens, num_accepted, k: int) -> list[tuple[int, int]]:
    """(accepted length, emitted token) per row; all-accepted rows are one outcome (the bonus
    token comes from outside the Triton kernel)."""
    rows = []
    for toks, a in zip(tokens.tolist(), num_accepted.tolist(), strict=True):
        rows.append((a, toks[a] if a < k else -1))
    return rows


def law_check(mod: Any, device: str, delta: float, k: int, V: int, n: int, interpret: bool,
              seed: int) -> float:  # fmt: skip
    """p-value of a chi-square homogeneity test between the two kernels' outcome laws on one
    input row repeated n times (fresh randomness in every row)."""
    import torch
    from scipy.stats import chi2_contingency

    from specbench_cli import kernel_checks
    from specbench_cli.backends import resolve_backend
    from specbench_cli.noise import Noise
    from specbench_cli.strategies import get_strategy

    strategy = get_strategy("cactus", delta=delta)
    g = torch.Generator().manual_seed(seed)
    # a draft far from the target, so that rejections (and recovered tokens) are common
    one = kernel_checks.make_inputs("random", 1, k, V, g, strategy, scale=1.5,
                                    draft_noise=2.0)  # fmt: skip
    dev = torch.device(device)
    q = one.target_probs.to(dev).expand(n, -1, -1).contiguous()
    p = one.draft_probs.to(dev).expand(n, -1, -1).contiguous()
    x = one.draft_tokens.to(dev).expand(n, -1).contiguous()
    torch.manual_seed(seed)  # the Triton wrapper draws its seed from torch's global generator
    backend = resolve_backend(device, dev)
    ours_kernel = get_strategy("cactus", delta=delta, backend=backend)
    noise = Noise.draw(g, n).to(dev)
    r = ours_kernel.verify_with_noise(q, p, x, noise, validate=False)
    tokens, acc = r.tokens, r.num_accepted
    ours = outcomes(tokens.cpu(), acc.cpu(), k)
    bonus = torch.zeros(n, 1, dtype=torch.int64, device=dev)
    tokens, acc = run_triton(mod, q, p, x, bonus, delta, interpret)
    theirs = outcomes(tokens.cpu(), acc.cpu(), k)
    keys = sorted(set(ours) | set(theirs))
    table = [[sum(1 for o in side if o == key) for key in keys] for side in (ours, theirs)]
    # merge rare outcomes (< 10 in both together) into one column: chi-square approximation
    big = [i for i in range(len(keys)) if table[0][i] + table[1][i] >= 10]
    small = [i for i in range(len(keys)) if i not in big]
    merged = [[row[i] for i in big] + ([sum(row[i] for i in small)] if small else [])
              for row in table]  # fmt: skip
    mean_ours = sum(a for a, _ in ours) / n
    mean_theirs = sum(a for a, _ in theirs) / n
    print(f"law check (delta={delta}, k={k}, V={V}, {n} rows each, {backend} vs Triton"
          f"{' interpreted' if interpret else ''}): mean accepted {mean_ours:.4f} vs "
          f"{mean_theirs:.4f}, {len(keys)} outcomes")
    return float(chi2_contingency(merged)[1])


def timings(mod: Any, delta: float, Bs: list[int], ks: list[int], Vs: list[int]) -> None:
    """GPU medians (us) of the Triton kernel, specbench's CUDA kernel and the reference."""
    import torch

    from specbench_cli import kernel_bench, kernel_checks
    from specbench_cli.backends import CompiledDriver
    from specbench_cli.strategies import get_strategy
    from specbench_cli.strategies.base import reference_verify

    dev = torch.device("cuda")
    strategy = get_strategy("cactus", delta=delta)
    kernel = CompiledDriver("cuda")
    print(f"{'B':>3} {'k':>2} {'V':>7} {'triton us':>10} {'ours us':>8} {'ours graph us':>14} "
          f"{'torch us':>9} {'triton/ours':>12}")  # fmt: skip
    for B in Bs:
        for k in ks:
            for V in Vs:
                g = torch.Generator().manual_seed(B * 1000 + k * 10 + V)
                inp = kernel_checks.make_inputs("random", B, k, V, g, strategy,
                                                draft_noise=0.5).to(dev)  # fmt: skip
                q, p, x, noise = inp.target_probs, inp.draft_probs, inp.draft_tokens, inp.noise
                bonus = torch.multinomial(q[:, k], 1)
                fns = [
                    functools.partial(mod.fused_cactus, p, x, q, bonus, delta=delta),
                    functools.partial(kernel, strategy, q, p, x, noise, None, None, False),
                    functools.partial(reference_verify, strategy, q, p, x, noise),
                ]
                replay = kernel_bench.graphed(fns[1], dev)
                times = kernel_bench.time_calls(fns + ([replay] if replay else []), 50, dev)
                t_tri, t_ours, t_ref, *t_graph = (1e6 * t for t in times)
                graph = f"{t_graph[0]:14.1f}" if t_graph else f"{'-':>14}"
                best = min(t_ours, *t_graph)
                print(f"{B:3d} {k:2d} {V:7d} {t_tri:10.1f} {t_ours:8.1f} {graph} {t_ref:9.1f} "
                      f"{t_tri / best:11.1f}x")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cactus", type=Path, default=REPO / ".cactus", help="Cactus checkout")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--delta", type=float, default=0.5)
    ap.add_argument("--rows", type=int, default=0, help="law check rows (0: 100000 GPU, "
                    "5000 CPU, where the interpreter takes ~20 ms a row)")
    ap.add_argument("-B", type=int, action="append", help="batch sizes (default 1 8 64)")
    ap.add_argument("-k", type=int, action="append", help="draft lengths (default 4 8)")
    ap.add_argument("-V", type=int, action="append", help="vocabularies (default 32000 128256)")
    args = ap.parse_args()
    import torch

    device = args.device if args.device != "auto" else (
        "cuda" if torch.cuda.is_available() else "cpu")  # fmt: skip
    interpret = device == "cpu"
    mod = load_triton_kernel(args.cactus, interpret)
    rows = args.rows or (5000 if interpret else 100000)
    V = 32 if interpret else 1024
    pvalue = law_check(mod, device, args.delta, 3, V, rows, interpret, seed=0)
    verdict = "same law" if pvalue > 1e-4 else "DIFFERENT laws"
    print(f"chi-square homogeneity p = {pvalue:.3g}: {verdict}")
    if pvalue <= 1e-4:
        sys.exit(1)
    if device == "cuda":
        timings(mod, args.delta, args.B or [1, 8, 64], args.k or [4, 8], args.V or [32000, 128256])


if __name__ == "__main__":
    main()
