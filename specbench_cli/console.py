"""The one pair of rich consoles: results on stdout, progress, warnings and errors on stderr."""

from __future__ import annotations

from rich.console import Console

# Results tables are wide; when stdout is a file or a pipe (CI logs), do not fold them to 80.
out = Console()
if not out.is_terminal:
    out = Console(width=200)
err = Console(stderr=True)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {message}", highlight=False)
