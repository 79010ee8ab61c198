"""The one pair of rich consoles: results on stdout, progress, warnings and errors on stderr."""

from __future__ import annotations

import os

from rich.console import Console

# Results tables fit the terminal; when stdout is a file or a pipe (CI logs) they get 200
# columns, or the width $COLUMNS asks for.
out = Console()
if not out.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
    out = Console(width=200)
err = Console(stderr=True)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {message}", highlight=False)
