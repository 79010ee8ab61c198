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
from specbench_cli.errors import EXIT_BAD_INPUT, SpecbenchError, shorten
from specbench_cli.interrupts import Interrupted, stop_signals_raise
from specbench_cli.launch import reports_errors

app = typer.Typer(
    name="specbench",
    help="Benchmark speculative decoding: drafters x acceptance strategies on real tasks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # click's plain help: fits 80 columns, no `<bool>` on flags
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
    """Entry point: one-line errors with exit code 2, tracebacks only with SPECBENCH_DEBUG=1;
    a stop signal (Ctrl-C, SIGTERM, SIGHUP) is one line and exit code 128 + its number."""
    try:
        with stop_signals_raise():
            rc = app(standalone_mode=False)  # returns the exit code of typer.Exit in this mode
    except Interrupted as exc:
        print(f"interrupted by {exc.name}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except SpecbenchError as exc:
        if os.environ.get("SPECBENCH_DEBUG"):
            raise
        if reports_errors():  # under a launcher every process finds it; rank 0 says it once
            print(f"Error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except OSError as exc:  # a file-system refusal no command anticipated: still one line
        if os.environ.get("SPECBENCH_DEBUG"):
            raise
        where = f"{shorten(str(exc.filename))}: " if exc.filename else ""
        print(f"Error: {where}{exc.strerror or exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
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
