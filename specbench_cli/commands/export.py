"""`specbench export RUN_DIR --format csv|jsonl|parquet`: a run as one flat table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from specbench_cli.console import err


def export(
    run: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run or sweep folder.")],
    format: Annotated[str, typer.Option(
        "--format", "-f", metavar="FORMAT", help="csv, jsonl or parquet (needs pyarrow).")
    ] = "csv",
    table: Annotated[str, typer.Option(
        metavar="TABLE", help="results (one line per results row) or records (one per prompt "
                              "x contender).")] = "results",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="FILE",
        help="Where to write (default RUN_DIR/<table>.<format>; '-' for stdout).")] = None,
) -> None:
    """Write a run's results (or records) as one flat table that pandas reads directly:
    nested fields become dotted columns (quality.rougeL, grid.k), per-position lists one
    column per position (per_position_acceptance.1)."""
    from specbench_cli.export import export as write_export
    from specbench_cli.results import resolve_results_path

    folder = resolve_results_path(run).parent if table == "results" else run
    path = write_export(folder, format, table, output)
    if path is not None:
        err.print(f"{table}: {path}")
