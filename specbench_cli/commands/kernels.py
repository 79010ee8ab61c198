"""`specbench kernels`: build the compiled verification kernels, check them against the PyTorch
reference, and time them (docs/kernels.md).

Examples:
    specbench kernels check                  # every strategy, probabilities and logits in
    specbench kernels check --strategy sps --rows 2000
    specbench kernels bench                  # the goal shapes: B=1,k=4,V=49152; B=64,k=8,V=128256
    specbench kernels bench --quick          # a small CPU grid
    specbench kernels bench -B 1 -B 8 -k 4 -V 49152 --strategy sps --strategy cactus

`check` exits 1 when a backend disagrees with the reference on more than 1 row in 10^4, counting
only disagreements whose reference decision was within rounding as tolerated; any other
disagreement fails. `bench` times the public API end to end (default arguments) and the kernel
alone. The input generation and comparison live in `specbench_cli.kernel_checks`, the timing in
`specbench_cli.kernel_bench`.
"""

from __future__ import annotations

import os

import typer
from rich.console import Console
from rich.table import Table

from specbench_cli.config import MAX_K
from specbench_cli.console import err, out
from specbench_cli.errors import BadInput
from specbench_cli.progress import open_progress
from specbench_cli.tables import Column, fit, make_table, print_table

MAX_BATCH = 4096
MAX_VOCAB = 1 << 20  # the largest vocabularies in use are about 262k

app = typer.Typer(
    help="Build the compiled verify kernels, check them against the reference, time them.",
    add_completion=False,
    no_args_is_help=True,
)


def default_specs() -> list[str]:
    """Every registered rule with a compiled kernel, at each of its `EXAMPLES` settings."""
    from specbench_cli.strategies import available_strategies, strategy_class

    specs = []
    for name in available_strategies():
        cls = strategy_class(name)
        if cls().kernel is not None:
            specs += [f"{name}:{params}" if params else name for params in cls.EXAMPLES]
    return specs


def _check_specs(specs: list[str]) -> None:
    """Bad strategy specs are bad input (one line, exit 2), found before any work starts."""
    from specbench_cli.strategies import parse_strategy_spec

    for spec in specs:
        try:
            parse_strategy_spec(spec)
        except ValueError as exc:
            raise BadInput(f"--strategy {spec}: {exc}") from None


def _check_requested_backends(requested: list[str] | None) -> None:
    """Bad input found without building anything: unknown names, cuda without a device."""
    import torch

    unknown = sorted(set(requested or []) - {"cpu", "cuda"})
    if unknown:
        raise BadInput(f"unknown backend(s) {unknown}: choose cpu or cuda")
    if "cuda" in (requested or []) and not torch.cuda.is_available():
        raise BadInput("--backend cuda: no CUDA device here")


def _backends_here(requested: list[str] | None) -> list[str]:
    """The compiled backends to check: those requested (each must be available here), else
    every one that builds here (at least one). Builds the kernels on first use."""
    from specbench_cli import kernels

    here = {"cpu": kernels.cpu_kernel_available(), "cuda": kernels.cuda_kernel_available()}
    missing = [b for b in requested or [] if not here[b]]
    if missing:
        why = {"cpu": "the CPU kernel does not build here (is g++ installed?)",
               "cuda": "no CUDA device or nvcc here"}  # fmt: skip
        raise BadInput(f"--backend {missing[0]}: {why[missing[0]]}")
    backends = requested or [b for b, ok in here.items() if ok]
    if not backends:
        raise BadInput("no compiled backend builds here (no g++ for the CPU kernel, no CUDA): "
                       "nothing to compare")  # fmt: skip
    return list(dict.fromkeys(backends))


@app.command("check")
def check(
    strategy: list[str] = typer.Option(  # noqa: B008
        None, "--strategy", "-s", help="Strategy spec(s), e.g. cactus:delta=0.5 (default: all)."
    ),
    backend: list[str] = typer.Option(  # noqa: B008
        None, "--backend", help="cpu and/or cuda (default: every one built)."
    ),
    rows: int = typer.Option(1000, "--rows", help="Random rows per strategy and input kind."),
    seed: int = typer.Option(0, "--seed", help="Seed of the input generator."),
    wide: bool = typer.Option(False, "--wide", help="Every column, however wide."),
) -> None:
    """Compare every available backend with the reference on random and adversarial inputs."""
    from specbench_cli import kernel_checks, kernels

    specs = strategy or default_specs()
    _check_specs(specs)
    if rows < 1:
        raise BadInput(f"--rows must be >= 1, got {rows}")
    _check_requested_backends(backend)
    results, failed = [], False
    checks = {"probs": kernel_checks.agreement, "logits": kernel_checks.logits_agreement}
    with open_progress(err) as progress:
        progress.stage("building or loading the compiled kernels")
        backends = _backends_here(backend)
        progress.note(
            f"cpu kernel: {'built' if kernels.cpu_kernel_available() else 'unavailable'}; "
            f"cuda kernel: {'built' if kernels.cuda_kernel_available() else 'unavailable'}"
        )
        cases = [(name, spec, kind) for name in backends for spec in specs for kind in checks]
        for done, (name, spec, kind) in enumerate(cases):
            progress.advance(done, len(cases), f"{name} {spec} {kind} in")
            s = checks[kind](name, spec, rows=rows, seed=seed)
            bad = s.failed > 0 or s.tolerated * 10_000 > s.rows
            failed |= bad
            results.append((name, spec, kind, s, bad))
        progress.advance(len(cases), len(cases), "done")
    print_agreement(results, out, wide)
    if failed:
        out.print("[red]FAIL[/red]: a backend disagrees with the reference beyond tolerance")
        raise typer.Exit(1)
    out.print("[green]OK[/green]: every backend agrees with the reference")


def print_agreement(results: list, console: Console, wide: bool = False) -> None:
    """The agreement table, fitted to the console: backend, strategy and input never cut.
    `results`: (backend, spec, input kind, Agreement, failed) per line."""
    backends = list(dict.fromkeys(r[0] for r in results))
    columns = [
        Column("backend", [r[0] for r in results], label=True),
        Column("strategy", [r[1] for r in results], label=True),
        Column("input", [r[2] for r in results], label=True),
        Column("rows", [str(r[3].rows) for r in results], right=True, drop=2),
        Column("token agree", [f"{r[3].token_rate:.6f}" for r in results], right=True),
        Column("accept agree", [f"{r[3].accept_rate:.6f}" for r in results], right=True),
        Column("tolerated", [str(r[3].tolerated) for r in results], right=True),
        Column("failed", [str(r[3].failed) for r in results], right=True),
    ]
    if len(backends) == 1:
        columns = columns[1:]
    dropped: list[str] = []
    if not wide:
        columns, dropped = fit(columns, console.width)
    title = f"Kernel vs reference ({', '.join(backends)} backend{'s' * (len(backends) > 1)})"
    table = make_table(columns, title, styles=["red" if r[4] else "" for r in results])
    print_table(console, table, wide)
    if dropped:
        console.print(f"Not shown at this width: {', '.join(dropped)} (--wide shows every "
                      "column).", highlight=False)  # fmt: skip


@app.command("bench")
def bench(
    strategy: list[str] = typer.Option(["sps"], "--strategy", "-s", help="Strategy spec(s)."),  # noqa: B008
    batch: list[int] = typer.Option(None, "-B", "--batch", help="Batch sizes."),  # noqa: B008
    draft_len: list[int] = typer.Option(None, "-k", help="Draft lengths."),  # noqa: B008
    vocab: list[int] = typer.Option(None, "-V", "--vocab", help="Vocabularies."),  # noqa: B008
    quick: bool = typer.Option(False, "--quick", help="CPU-sized grid: B 1 8, k 4, V 32000 49152."),
    repeats: int = typer.Option(0, "--repeats", help="Timed calls per contender (0: auto)."),
    threads: int = typer.Option(0, "--threads", help="torch/OpenMP threads (0: leave as is)."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda or auto (cuda when present)."),
) -> None:
    """Time the public API end to end on each backend against the PyTorch reference, and the
    kernel alone; print medians and speedup ratios. Default shapes: the goals (B=1, k=4,
    V=49152 and B=64, k=8, V=128256); -B/-k/-V give a grid instead."""
    import torch

    from specbench_cli import kernel_bench

    _check_bench_args(strategy, {"-B": batch, "-k": draft_len, "-V": vocab},
                      {"--repeats": repeats, "--threads": threads})  # fmt: skip
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") or (device == "cuda" and not torch.cuda.is_available()):
        raise BadInput(f"--device {device!r} is not available here")
    if threads > 0:
        torch.set_num_threads(threads)
    _note_load(device)
    shapes = _shapes(quick, batch, draft_len, vocab)
    _check_fits(max(s[0] for s in shapes), max(s[1] for s in shapes), max(s[2] for s in shapes),
                device)  # fmt: skip
    results = kernel_bench.bench_grid(
        strategy, shapes, device=device, repeats=repeats,
        progress=lambda msg: out.print(msg, style="dim", highlight=False),
    )  # fmt: skip
    out.print(_bench_table(results, device, torch.get_num_threads()))
    gpu = device == "cuda"
    if gpu and results:
        out.print(
            f"copy bandwidth measured: {results[0].copy_gbps:.0f} GB/s; bytes counted: the q "
            "and p rows the rule must read",
            highlight=False,
        )
    for line in _gpu_goals(results) if gpu else _cpu_goals(results):
        out.print(line, highlight=False)


def _check_bench_args(specs: list[str], sizes: dict[str, list[int] | None],
                      counts: dict[str, int]) -> None:  # fmt: skip
    """Bad input before any tensor is made: specs, shape sizes in range, counts >= 0."""
    _check_specs(specs)
    most = {"-B": MAX_BATCH, "-k": MAX_K, "-V": MAX_VOCAB}
    for flag, values in sizes.items():
        if any(not 1 <= v <= most[flag] for v in values or []):
            raise BadInput(f"{flag} values must be between 1 and {most[flag]}, got {values}")
    for flag, value in counts.items():
        if value < 0:
            raise BadInput(f"{flag} must be >= 0 (0: automatic), got {value}")


def _check_fits(B: int, k: int, V: int, device: str) -> None:
    """Bad input when the largest shape's inputs (q, p, noise, copies: about 4 tensors of
    B x (k+1) x V floats) would not fit in the memory available."""
    import psutil
    import torch

    need = 4 * 4 * B * (k + 1) * V
    if device == "cuda":
        have = torch.cuda.mem_get_info()[0]
    else:
        have = psutil.virtual_memory().available
    if need > have:
        raise BadInput(f"B={B}, k={k}, V={V} needs about {need / 2**30:.1f} GiB of inputs, more "
                       f"than the {have / 2**30:.1f} GiB free on {device}")  # fmt: skip


def _shapes(quick: bool, batch: list[int] | None, draft_len: list[int] | None,
            vocab: list[int] | None) -> list[tuple[int, int, int]]:  # fmt: skip
    from specbench_cli.kernel_bench import GOAL_SHAPES

    if not (quick or batch or draft_len or vocab):
        return list(GOAL_SHAPES)
    grid_b, grid_k, grid_v = ([1, 8], [4], [32000, 49152]) if quick else ([1], [4], [49152])
    return [(B, k, V) for B in batch or grid_b for k in draft_len or grid_k
            for V in vocab or grid_v]  # fmt: skip


def _note_load(device: str) -> None:
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if device == "cpu" and load > cores:
        out.print(
            f"[yellow]note:[/yellow] load average {load:.1f} on {cores} cores: other "
            "processes compete for the CPU and timings are unreliable",
            highlight=False,
        )


def _bench_table(results: list, device: str, threads: int) -> Table:
    table = Table(title=f"verify time per call, median ({device}, {threads} threads): public API "
                  "end to end (default arguments: value checks on; then validate=False), and the "
                  "drivers alone (checked inputs, fixed noise)", title_justify="left")
    gpu = device == "cuda"
    cols = ["strategy", "B", "k", "V", "torch us", "kernel us", "speedup", "torch unchecked us",
            "kernel unchecked us", "speedup unchecked", "torch core us", "kernel core us"]
    if gpu:
        cols += ["graph us", "GB/s", "% copy BW"]  # graph: the kernel replayed from a CUDA graph
    for col in cols:
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for r in results:
        row = [r.spec, str(r.B), str(r.k), str(r.V), f"{r.torch_us:.1f}", f"{r.kernel_us:.1f}",
               f"{r.speedup:.1f}x", f"{r.torch_unchecked_us:.1f}", f"{r.kernel_unchecked_us:.1f}",
               f"{r.unchecked_speedup:.1f}x", f"{r.torch_core_us:.1f}",
               f"{r.kernel_core_us:.1f}"]  # fmt: skip
        if gpu:
            row += ["-" if r.graph_us is None else f"{r.graph_us:.1f}", f"{r.gbps:.0f}",
                    f"{100 * r.bw_fraction:.1f}%"]  # fmt: skip
        table.add_row(*row)
    return table


def _cpu_goals(results: list) -> list[str]:
    """The CPU goal: the public API at least 5x the reference end to end at the goal shapes."""
    from specbench_cli.kernel_bench import GOAL_SHAPES

    return [f"goal >= 5x end to end: {r.spec} B={r.B} k={r.k} V={r.V} {r.speedup:.1f}x "
            f"{'met' if r.speedup >= 5 else 'NOT met'}"
            for r in results if (r.B, r.k, r.V) in GOAL_SHAPES]  # fmt: skip


def _gpu_goals(results: list) -> list[str]:
    """The GPU kernel goals, judged on the graph-replayed time (eager time when not captured)."""
    lines = []
    for r in results:
        t = r.graph_us if r.graph_us is not None else r.kernel_core_us
        shape = f"{r.spec} B={r.B} k={r.k} V={r.V}"
        if r.B <= 8:
            lines.append(f"goal <= 6 us at B <= 8: {shape} {t:.1f} us "
                         f"{'met' if t <= 6 else 'NOT met'}")
        if (r.B, r.k, r.V) == (64, 8, 128256):
            ok = t <= 30 and r.torch_core_us / t >= 20
            lines.append(f"goal <= 30 us and >= 20x the reference: {shape} {t:.1f} us, "
                         f"{r.torch_core_us / t:.1f}x {'met' if ok else 'NOT met'}")
    return lines
