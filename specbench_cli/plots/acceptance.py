"""Acceptance figures: per-position acceptance in its three forms, and the histogram of
accepted drafts per step. Each series is drawn at its largest k (the longest profile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from specbench_cli.plots.data import Point, deepest, series_along
from specbench_cli.plots.speed import marker_of, style_index
from specbench_cli.plots.style import Palette, legend, new_figure, save

FORMS = (
    ("per_position_acceptance_conditional", "conditional",
     "P(draft i accepted | drafts 1..i-1 accepted)"),
    ("per_position_acceptance_unconditional", "unconditional (vLLM)",
     "drafts accepted at i / all drafting steps"),
    ("per_position_acceptance", "joint", "P(first i accepted | i drafted)"),
)  # fmt: skip


def _deepest_series(points: list[Point]) -> list[tuple[Any, Point]]:
    """(series along k, its largest-k point), labelled without k."""
    series = series_along(points, "k")
    return list(zip(series, deepest(points), strict=True))


def acceptance_by_position(points: list[Point], palette: Palette,
                           output: Path) -> list[Path]:  # fmt: skip
    """Three panels, one per form, a line per strategy over draft positions 1..k."""
    pairs = _deepest_series(points)
    styles = style_index([s for s, _ in pairs])
    fig, axes = new_figure(3, width=4.6, height=4.2)
    rows: list[list[Any]] = []
    for s, p in pairs:
        colour = palette.colour(s.strategy)
        marker = marker_of(s, styles)
        forms = [p.row.get(field) or [] for field, _, _ in FORMS]
        for ax, values in zip(axes, forms, strict=True):
            positions = list(range(1, len(values) + 1))
            ax.plot(positions, values, linestyle="-", marker=marker, color=colour,
                    label=f"{s.label} (k={p.value('k')})", lw=1.8, ms=6)  # fmt: skip
        depth = max(len(v) for v in forms)
        rows += [[s.label, p.value("k"), i + 1, *(v[i] if i < len(v) else None for v in forms)]
                 for i in range(depth)]  # fmt: skip
    for ax, (_, name, meaning) in zip(axes, FORMS, strict=True):
        ax.set(title=f"{name}\n{meaning}", xlabel="draft position i", ylim=(0, 1.02))
        _integer_x(ax)
    axes[0].set_ylabel("acceptance")
    legend(fig, axes[0].get_legend_handles_labels()[0], below=True)
    return save(fig, output, "acceptance_by_position",
                ["series", "k", "position", "conditional", "unconditional", "joint"], rows)


def accepted_length_histogram(points: list[Point], palette: Palette,
                              output: Path) -> list[Path]:  # fmt: skip
    """Share of drafting steps that accepted exactly a drafts, a = 0..k, bars per strategy."""
    pairs = [(s, p) for s, p in _deepest_series(points) if p.row.get("accepted_length_histogram")]
    if not pairs:
        return []
    fig, (ax,) = new_figure(1, width=7.6)
    depth = max(len(p.row["accepted_length_histogram"]) for _, p in pairs)
    width = 0.8 / len(pairs)
    rows: list[list[Any]] = []
    for i, (s, p) in enumerate(pairs):
        counts = p.row["accepted_length_histogram"]
        total = sum(counts) or 1
        shares = [c / total for c in counts]
        xs = np.arange(len(counts)) - 0.4 + width * (i + 0.5)
        ax.bar(xs, shares, width=width * 0.92, color=palette.colour(s.strategy),
               label=f"{s.label} (k={p.value('k')})", edgecolor="white", lw=0.5)  # fmt: skip
        rows += [[s.label, p.value("k"), a, c, share]
                 for a, (c, share) in enumerate(zip(counts, shares, strict=True))]  # fmt: skip
    ax.set_xticks(range(depth))
    ax.set(title="Accepted drafts per drafting step", xlabel="accepted drafts a (tokens "
           "emitted: a + 1)", ylabel="share of drafting steps")  # fmt: skip
    ax.grid(axis="x", visible=False)
    legend(fig, ax.get_legend_handles_labels()[0])
    return save(fig, output, "accepted_length_histogram",
                ["series", "k", "accepted", "steps", "share"], rows)


def _integer_x(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
