"""The `specbench` command: composes the sub-commands and maps errors to exit codes.

Each command lives in `specbench_cli/commands/<name>.py`; this module holds no logic.
Torch is imported inside commands only, so `specbench --help` stays fast.
"""

from __future__ import annotations

import os
import sys

import typer

from specbench_cli import __version__
from specbench_cli.commands import kernels as kernels_cmd
from specbench_cli.commands import suites as suites_cmd
from specbench_cli.commands.compare import compare as compare_cmd
from specbench_cli.commands.export import export as export_cmd
from specbench_cli.commands.plot import plot as plot_cmd
from specbench_cli.commands.run import run as run_cmd
from specbench_cli.commands.strategies import strategies as strategies_cmd
from specbench_cli.commands.sweep import sweep as sweep_cmd
from specbench_cli.errors import SpecbenchError

app = typer.Typer(
    name="specbench",
    help="Benchmark speculative decoding: drafters x acceptance strategies on real tasks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("run")(run_cmd)
app.command("sweep")(sweep_cmd)
app.command("strategies")(strategies_cmd)
app.add_typer(suites_cmd.app, name="suites")
app.add_typer(kernels_cmd.app, name="kernels")
app.command("compare")(compare_cmd)
app.command("plot")(plot_cmd)
app.command("export")(export_cmd)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


def main() -> None:
    """Entry point: one-line errors with exit code 2, tracebacks only with SPECBENCH_DEBUG=1."""
    try:
        rc = app(standalone_mode=False)  # returns the exit code of typer.Exit in this mode
    except SpecbenchError as exc:
        if os.environ.get("SPECBENCH_DEBUG"):
            raise
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("Aborted.", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        # usage errors (typer vendors its own click, so match by shape, not by class)
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(rc if isinstance(rc, int) else 0)
