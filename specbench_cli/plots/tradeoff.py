"""Trade-off figures: quality delta (or divergence) against speedup, every strategy at every
grid point, with the Pareto front marked."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.lines import Line2D

from specbench_cli.plots.data import Point, varying
from specbench_cli.plots.style import Palette, legend, marker_for, new_figure, save

MAX_PANELS = 4  # quality metrics shown side by side


def pareto_front(pairs: list[tuple[float, float]], higher_y_better: bool) -> list[int]:
    """Indices of the points no other point beats on both speedup (x, higher is better) and y,
    sorted by x. Equal points are all kept."""
    sign = 1.0 if higher_y_better else -1.0
    front = []
    for i, (x, y) in enumerate(pairs):
        dominated = any(
            (ox >= x and sign * oy >= sign * y) and (ox > x or sign * oy > sign * y)
            for j, (ox, oy) in enumerate(pairs) if j != i
        )  # fmt: skip
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: pairs[i][0])


def _tag(point: Point, axes: list[str]) -> str:
    return ", ".join(f"{a.split('.')[-1]}={point.value(a)}" for a in axes
                     if point.value(a) is not None)  # fmt: skip


class Markers:
    """A marker per combination of the swept settings (k, temperature, ...); colour is the
    strategy with its parameters."""

    def __init__(self, points: list[Point]) -> None:
        self.axes = [a for a in varying(points) if "." not in a]
        combos = list(dict.fromkeys(self.combo(p) for p in points))
        self._index = {c: i for i, c in enumerate(combos)}

    def combo(self, point: Point) -> tuple:
        return tuple(point.value(a) for a in self.axes)

    def marker(self, point: Point) -> str:
        return marker_for(self._index[self.combo(point)])

    def handles(self) -> list[Any]:
        if not self.axes:
            return []
        return [Line2D([], [], color="grey", marker=marker_for(i), linestyle="none",
                       label=", ".join(f"{a}={v}" for a, v in zip(self.axes, combo,
                                                                  strict=True)))
                for combo, i in self._index.items()]  # fmt: skip


def _panel(ax: Any, points: list[Point], ys: list[float], errors: list[tuple],
           higher_y_better: bool, palette: Palette, markers: Markers) -> list[int]:  # fmt: skip
    """Scatter with 95% interval bars (colour per strategy, marker per swept settings), the
    Pareto front ringed, joined and labelled with its settings."""
    for p, y, (low, high) in zip(points, ys, errors, strict=True):
        ci = p.row.get("speedup_ci") or []
        xerr = ([[p.row["speedup"] - ci[0]], [ci[1] - p.row["speedup"]]]
                if len(ci) == 2 and None not in ci else None)  # fmt: skip
        yerr = [[y - low], [high - y]] if low is not None and high is not None else None
        ax.errorbar([p.row["speedup"]], [y], xerr=xerr, yerr=yerr, fmt=markers.marker(p),
                    color=palette.colour(p.strategy), ms=7, capsize=2, lw=0.8, alpha=0.9,
                    label=p.strategy)  # fmt: skip
    front = pareto_front([(p.row["speedup"], y) for p, y in zip(points, ys, strict=True)],
                         higher_y_better)  # fmt: skip
    fx = [points[i].row["speedup"] for i in front]
    fy = [ys[i] for i in front]
    ax.plot(fx, fy, linestyle="-", color="black", lw=1.0, alpha=0.6, zorder=0)
    ax.scatter(fx, fy, s=170, facecolors="none", edgecolors="black", lw=1.3,
               label="Pareto front", zorder=3)  # fmt: skip
    for i, x, y in zip(front, fx, fy, strict=True):
        label = ", ".join([points[i].strategy] + ([_tag(points[i], markers.axes)]
                                                   if markers.axes else []))  # fmt: skip
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(7, 7), fontsize=7.5,
                    color="#222222")  # fmt: skip
    ax.axvline(1.0, color="grey", lw=1, linestyle=":")
    return front


def quality_vs_speedup(points: list[Point], palette: Palette, output: Path) -> list[Path]:
    """One panel per quality metric: delta against the baseline (95% CI) vs speedup."""
    metrics = sorted({m for p in points for m in (p.row.get("quality_delta") or {})})
    if not metrics:
        return []
    metrics = metrics[:MAX_PANELS]
    axes_names = list(varying(points))
    markers = Markers(points)
    fig, axes = new_figure(len(metrics), width=8.0 if len(metrics) == 1 else 5.6, height=4.8)
    rows: list[list[Any]] = []
    for ax, metric in zip(axes, metrics, strict=True):
        chosen = [p for p in points if metric in (p.row.get("quality_delta") or {})]
        deltas = [p.row["quality_delta"][metric] for p in chosen]
        ys = [d["value"] for d in deltas]
        errors = [(d.get("low"), d.get("high")) for d in deltas]
        front = _panel(ax, chosen, ys, errors, True, palette, markers)
        ax.axhline(0.0, color="grey", lw=1, linestyle=":")
        ax.set(title=f"Quality vs speedup: {metric} (upper right is better)", xlabel="speedup (x)",
               ylabel=f"{metric} delta vs baseline (95% CI)")  # fmt: skip
        rows += [[metric, p.strategy, _tag(p, axes_names), p.row["speedup"], y, lo, hi,
                  i in front] for i, (p, y, (lo, hi)) in enumerate(zip(chosen, ys, errors,
                                                                        strict=True))]
    legend(fig, _unique_handles(axes) + markers.handles())
    return save(fig, output, "quality_vs_speedup",
                ["metric", "strategy", "point", "speedup", "quality_delta", "delta_ci_low",
                 "delta_ci_high", "pareto"], rows)  # fmt: skip


def divergence_vs_speedup(points: list[Point], palette: Palette, output: Path) -> list[Path]:
    """KL(pi || q) per emitted token against speedup: what each rule pays for its speed."""
    chosen = [p for p in points if _kl(p) is not None]
    if not any(_kl(p) for p in chosen):
        return []  # every rule lossless: nothing to trade
    axes_names = list(varying(points))
    fig, (ax,) = new_figure(1, width=7.2, height=4.8)
    ys = [_kl(p) for p in chosen]
    markers = Markers(points)
    front = _panel(ax, chosen, ys, [(None, None)] * len(chosen), False, palette, markers)
    ax.set(title="Divergence vs speedup (lower right is better)", xlabel="speedup (x)",
           ylabel="KL(output law || target) per token")  # fmt: skip
    legend(fig, _unique_handles([ax]) + markers.handles())
    rows = [[p.strategy, _tag(p, axes_names), p.row["speedup"], y, i in front]
            for i, (p, y) in enumerate(zip(chosen, ys, strict=True))]  # fmt: skip
    return save(fig, output, "divergence_vs_speedup",
                ["strategy", "point", "speedup", "kl_per_token", "pareto"], rows)


def _kl(point: Point) -> float | None:
    kl = (point.row.get("divergence") or {}).get("kl")
    if isinstance(kl, (int, float)) and math.isfinite(kl):
        return float(kl)
    return None


def _unique_handles(axes: list[Any]) -> list[Any]:
    """Legend entries of all panels, each label once."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    return list(seen.values())
