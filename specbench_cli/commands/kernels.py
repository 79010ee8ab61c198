"""`specbench kernels`: build the compiled verification kernels, check them against the PyTorch
reference, and time them (docs/kernels.md).

Examples:
    specbench kernels check                  # every strategy, both noise modes, every backend here
    specbench kernels check --strategy sps --rows 2000
    specbench kernels bench --quick          # CPU-sized grid; the goal shape is B=1, k=4, V=49152
    specbench kernels bench -B 1 -B 8 -k 4 -V 49152 --strategy sps --strategy cactus

`check` exits 1 when a backend disagrees with the reference on more than 1 row in 10^4, counting
only disagreements whose reference decision was within rounding as tolerated; any other
disagreement fails. The input generation and comparison live in `specbench_cli.kernel_checks`.
"""

from __future__ import annotations

import os

import typer
from rich.console import Console
from rich.table import Table

from specbench_cli.choices import NOISE_MODES
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
    rows: int = typer.Option(1000, "--rows", help="Random rows per (strategy, mode, case, shape)."),
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
    with open_progress(err) as progress:
        progress.stage("building or loading the compiled kernels")
        backends = _backends_here(backend)
        progress.note(
            f"cpu kernel: {'built' if kernels.cpu_kernel_available() else 'unavailable'}; "
            f"cuda kernel: {'built' if kernels.cuda_kernel_available() else 'unavailable'}"
        )
        cases = [(name, spec, mode) for name in backends for spec in specs
                 for mode in NOISE_MODES]  # fmt: skip
        for done, (name, spec, mode) in enumerate(cases):
            progress.advance(done, len(cases), f"{name} {spec} {mode} noise")
            s = kernel_checks.agreement(name, spec, mode, rows=rows, seed=seed)
            bad = s.failed > 0 or s.tolerated * 10_000 > s.rows
            failed |= bad
            results.append((name, spec, mode, s, bad))
        progress.advance(len(cases), len(cases), "done")
    print_agreement(results, out, wide)
    if failed:
        out.print("[red]FAIL[/red]: a backend disagrees with the reference beyond tolerance")
        raise typer.Exit(1)
    out.print("[green]OK[/green]: every backend agrees with the reference")


def print_agreement(results: list, console: Console, wide: bool = False) -> None:
    """The agreement table, fitted to the console: backend, strategy and mode never cut.
    `results`: (backend, spec, mode, Agreement, failed) per line."""
    backends = list(dict.fromkeys(r[0] for r in results))
    columns = [
        Column("backend", [r[0] for r in results], label=True),
        Column("strategy", [r[1] for r in results], label=True),
        Column("mode", [r[2] for r in results], label=True),
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
    batch: list[int] = typer.Option(None, "-B", "--batch", help="Batch sizes (default 1 8 64)."),  # noqa: B008
    draft_len: list[int] = typer.Option(None, "-k", help="Draft lengths (default 4 8)."),  # noqa: B008
    vocab: list[int] = typer.Option(  # noqa: B008
        None, "-V", "--vocab", help="Vocabularies (default 32000 49152 128256 151936)."
    ),
    mode: str = typer.Option("race", "--mode", help="Final-token noise: race or icdf."),
    quick: bool = typer.Option(False, "--quick", help="CPU-sized grid: B 1 8, k 4, V 32000 49152."),
    repeats: int = typer.Option(0, "--repeats", help="Timed calls per contender (0: auto)."),
    threads: int = typer.Option(0, "--threads", help="torch/OpenMP threads (0: leave as is)."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda or auto (cuda when present)."),
) -> None:
    """Time each backend against the PyTorch reference; print medians and speedup ratios."""
    import torch

    from specbench_cli import kernel_checks

    _check_bench_args(mode, strategy, {"-B": batch, "-k": draft_len, "-V": vocab},
                      {"--repeats": repeats, "--threads": threads})  # fmt: skip
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") or (device == "cuda" and not torch.cuda.is_available()):
        raise BadInput(f"--device {device!r} is not available here")
    if threads > 0:
        torch.set_num_threads(threads)
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if device == "cpu" and load > cores:
        out.print(
            f"[yellow]note:[/yellow] load average {load:.1f} on {cores} cores: other "
            "processes compete for the CPU and timings are unreliable",
            highlight=False,
        )
    if quick:
        grid_b, grid_k, grid_v = [1, 8], [4], [32000, 49152]
    else:
        grid_b, grid_k, grid_v = [1, 8, 64], [4, 8], [32000, 49152, 128256, 151936]
    grid_b, grid_k, grid_v = batch or grid_b, draft_len or grid_k, vocab or grid_v
    _check_fits(max(grid_b), max(grid_k), max(grid_v), device)
    results = kernel_checks.bench_grid(
        strategy, grid_b, grid_k, grid_v, mode=mode, device=device, repeats=repeats,
        progress=lambda msg: out.print(msg, style="dim", highlight=False),
    )  # fmt: skip
    table = Table(
        title=f"verify time per call, median ({device}, {mode} noise, "
        f"{torch.get_num_threads()} threads)",
        title_justify="left",
    )
    gpu = device == "cuda"
    cols = ["strategy", "B", "k", "V", "torch us", "kernel us", "speedup"]
    if gpu:
        cols[6:6] = ["graph us"]  # kernel replayed from a CUDA graph: what the goals measure
        cols += ["GB/s", "% copy BW"]
    for col in cols:
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for r in results:
        best = min(r.kernel_us, r.graph_us or r.kernel_us)
        row = [r.spec, str(r.B), str(r.k), str(r.V), f"{r.torch_us:.1f}", f"{r.kernel_us:.1f}",
               f"{r.torch_us / best:.1f}x"]  # fmt: skip
        if gpu:
            row[6:6] = ["-" if r.graph_us is None else f"{r.graph_us:.1f}"]
            row += [f"{r.gbps:.0f}", f"{100 * r.bw_fraction:.1f}%"]
        table.add_row(*row)
    out.print(table)
    if gpu and results:
        out.print(
            f"copy bandwidth measured: {results[0].copy_gbps:.0f} GB/s; bytes counted: the q "
            "and p rows the rule must read (+ the e_fin row in race mode)",
            highlight=False,
        )
        for line in _gpu_goals(results):
            out.print(line, highlight=False)


def _check_bench_args(mode: str, specs: list[str], sizes: dict[str, list[int] | None],
                      counts: dict[str, int]) -> None:  # fmt: skip
    """Bad input before any tensor is made: mode, specs, shape sizes in range, counts >= 0."""
    if mode not in NOISE_MODES:
        raise BadInput(f"--mode must be race or icdf, got {mode!r}")
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


def _gpu_goals(results: list) -> list[str]:
    """The GPU kernel goals, judged on the graph-replayed time (eager time when not captured)."""
    lines = []
    for r in results:
        t = r.graph_us if r.graph_us is not None else r.kernel_us
        shape = f"{r.spec} B={r.B} k={r.k} V={r.V}"
        if r.B <= 8:
            lines.append(f"goal <= 6 us at B <= 8: {shape} {t:.1f} us "
                         f"{'met' if t <= 6 else 'NOT met'}")
        if (r.B, r.k, r.V) == (64, 8, 128256):
            ok = t <= 30 and r.torch_us / t >= 20
            lines.append(f"goal <= 30 us and >= 20x the reference: {shape} {t:.1f} us, "
                         f"{r.torch_us / t:.1f}x {'met' if ok else 'NOT met'}")
    return lines
