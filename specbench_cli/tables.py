"""Tables that fit the terminal: columns dropped by priority, labels never cut.

Every table specbench prints is a list of `Column`s. A label column (what tells rows apart: a
strategy, a metric, a suite) is never truncated or wrapped; other columns carry a drop priority
and, when the table is wider than the console, the optional columns with the highest priority
go first until it fits. Which columns were dropped is returned, so the caller can say so
below the table. Widths are measured by rich itself, so what fits here fits when printed.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.table import Table

_MEASURE = Console(width=10_000, color_system=None, force_terminal=False)


@dataclass
class Column:
    header: str
    cells: list[str]  # one per row; a cell may hold several lines
    right: bool = False  # right-aligned (numbers)
    drop: int = 0  # 0: always shown; when narrow, the highest numbers are dropped first
    label: bool = False  # tells rows apart: shown whole, never truncated or wrapped


def times(x: float | None) -> str:
    """A ratio as a table cell: `1.23x`, or `-` when it could not be measured."""
    return "-" if x is None else f"{x:.2f}x"


def natural_width(col: Column) -> int:
    """The width of a column's longest line, header included."""
    lines = (line for cell in col.cells for line in cell.splitlines())
    return max([len(col.header), *map(len, lines)])


def make_table(columns: list[Column], title: str | None = None, styles: list[str] | None = None,
               widths: list[int] | None = None, show_header: bool = True) -> Table:  # fmt: skip
    """A compact table (no outer frame, one rule under the header) of the given columns;
    `widths` fixes every column's width (tables printed one under another then align)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, collapse_padding=True, title_style="bold",
                  show_header=show_header)  # fmt: skip
    for i, col in enumerate(columns):
        table.add_column(col.header, justify="right" if col.right else "left", no_wrap=True,
                         overflow="fold", width=widths[i] if widths else None,
                         min_width=natural_width(col) if col.label else None)  # fmt: skip
    for i in range(max((len(c.cells) for c in columns), default=0)):
        table.add_row(*(col.cells[i] for col in columns), style=styles[i] if styles else None)
    return table


def width_of(columns: list[Column]) -> int:
    """The printed width of these columns as one table (the title may wrap; it is not counted)."""
    return _MEASURE.measure(make_table(columns)).maximum


def fit(columns: list[Column], width: int) -> tuple[list[Column], list[str]]:
    """(columns shown, headers dropped): optional columns go, highest `drop` first, until the
    table is at most `width` wide or only the ones that always show are left; then dropped
    columns that fit in the room left come back, most important first."""
    shown = list(columns)
    while width_of(shown) > width and any(c.drop > 0 for c in shown):
        shown.remove(max((c for c in shown if c.drop > 0), key=lambda c: c.drop))
    for col in sorted((c for c in columns if c not in shown), key=lambda c: c.drop):
        trial = [c for c in columns if c in shown or c is col]
        if width_of(trial) <= width:
            shown = trial
    return shown, [c.header for c in columns if c not in shown]


def print_table(console: Console, table: Table, wide: bool = False) -> None:
    """Print a table; `wide` lets it run past the console's width instead of squeezing it."""
    if not wide:
        console.print(table)
        return
    width = console.width  # rich never prints wider than the console: widen it for this table
    console.width = max(width, _MEASURE.measure(table).maximum)
    try:
        console.print(table)
    finally:
        console.width = width
