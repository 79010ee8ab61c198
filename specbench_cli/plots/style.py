"""One look for every figure: a colour per strategy (the same in every figure of one `plot`
call), line styles for the other grid values, and PNG + CSV written side by side."""

from __future__ import annotations

import colorsys
import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never a window

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex, to_rgb  # noqa: E402

# fixed hues for the registered strategies, so e.g. cactus is green in every figure and run
HUES = {"greedy": "#7f7f7f", "sps": "#1f77b4", "tas": "#ff7f0e", "cactus": "#2ca02c",
        "topk": "#d62728", "interp": "#9467bd", "block": "#8c564b", "specinfer": "#e377c2",
        "rrs": "#17becf", "spectr": "#bcbd22"}  # fmt: skip
SPARE = ["#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"]
MARKERS = ["o", "s", "^", "D", "v", "P"]
DPI = 130


class Palette:
    """Colour per strategy label: a hue per strategy name (the bare name, as drawn along that
    strategy's own parameter, gets the hue itself), and for several parameter settings of one
    name, shades of that hue from dark to light in sorted label order."""

    def __init__(self, strategies: Iterable[tuple[str, str]]) -> None:
        by_name: dict[str, list[str]] = {}
        for name, label in sorted(set(strategies)):
            by_name.setdefault(name, []).append(label)
        self._colours: dict[str, str] = {}
        spare = iter(SPARE * 4)
        for name, labels in by_name.items():
            base = HUES.get(name) or next(spare)
            variants = [label for label in labels if label != name]
            self._colours[name] = base
            for i, label in enumerate(variants):
                self._colours[label] = _shade(base, i, len(variants))

    def colour(self, label: str) -> str:
        return self._colours.get(label, "#000000")


def _shade(colour: str, i: int, n: int) -> str:
    """The i-th of n shades of a colour: lightness spread over 0.28..0.68 (readable on white)."""
    if n == 1:
        return colour
    h, _, s = colorsys.rgb_to_hls(*to_rgb(colour))
    lightness = 0.28 + 0.40 * i / (n - 1)
    return to_hex(colorsys.hls_to_rgb(h, lightness, min(1.0, s * 1.1)))


def marker_for(index: int) -> str:
    """The marker of the index-th combination of the other grid values (lines stay solid:
    dashed lines mean a model prediction in every figure)."""
    return MARKERS[index % len(MARKERS)]


def new_figure(panels: int = 1, width: float = 6.4, height: float = 4.4) -> tuple[Any, list]:
    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.grid": True,
                         "grid.alpha": 0.3, "legend.fontsize": 8.5})  # fmt: skip
    fig, axes = plt.subplots(1, panels, figsize=(width * panels, height), squeeze=False,
                             layout="constrained")  # fmt: skip
    return fig, list(axes[0])


def legend(fig: Any, handles: list[Any], below: bool = False) -> None:
    """The figure's legend outside the axes (right, or below for wide figures), so it never
    hides a point."""
    if below:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(4, len(handles)),
                   frameon=False)  # fmt: skip
    else:
        fig.legend(handles=handles, loc="outside right upper", frameon=False)


def save(fig: Any, output: Path, name: str, header: list[str],
         rows: list[list[Any]]) -> list[Path]:  # fmt: skip
    """`<name>.png` and `<name>.csv` (the plotted numbers) in `output`."""
    output.mkdir(parents=True, exist_ok=True)
    png, table = output / f"{name}.png", output / f"{name}.csv"
    fig.savefig(png, dpi=DPI)
    plt.close(fig)
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([_cell(v) for v in row] for row in rows)
    return [png, table]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
