"""`specbench plot RUN_DIR... [--output DIR]`: figures and their numbers from run folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from specbench_cli.console import err, out


def plot(
    runs: Annotated[list[Path], typer.Argument(
        metavar="RUN_DIR...", help="Run folders (or results.json files) of runs or sweeps.")],
    output: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Where to write the figures (default: RUN_DIR/plots for one run, "
                            "./plots for several).")] = None,
) -> None:
    """Write PNG figures, each with a CSV of the plotted numbers beside it: speedup and mean
    accepted tokens against k (with the speedup model's prediction), per-position acceptance,
    accepted lengths, quality delta or divergence against speedup with the Pareto front, and
    speedup against every other swept setting."""
    from specbench_cli.plots import make_plots
    from specbench_cli.results import resolve_results_path

    folders = [resolve_results_path(r).parent for r in runs]
    target = output or (folders[0] / "plots" if len(folders) == 1 else Path("plots"))
    files = make_plots(folders, target)
    for path in files:
        if path.suffix == ".png":
            out.print(str(path), highlight=False)
    err.print(f"{sum(p.suffix == '.png' for p in files)} figures (and a CSV of each) in {target}")
