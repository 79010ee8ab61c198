"""Speed figures: speedup and mean accepted tokens against k (measured, with the speedup
model's prediction), and speedup against any other swept setting or strategy parameter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.lines import Line2D

from specbench_cli.plots.data import Point, Series, model_at, model_curve, series_along
from specbench_cli.plots.style import Palette, legend, marker_for, new_figure, save

MODEL_K = 12  # the model curve of a single-k run is drawn for k = 1..max(MODEL_K, 2k)


def _ci(point: Point) -> tuple[float | None, float | None]:
    ci = point.row.get("speedup_ci") or []
    return (ci[0], ci[1]) if len(ci) == 2 and None not in ci else (None, None)


def style_index(series: list[Series]) -> dict[tuple, int]:
    """Marker per combination of the other grid values, in order of appearance."""
    combos = list(dict.fromkeys(tuple(s.fixed.items()) for s in series))
    return {combo: i for i, combo in enumerate(combos)}


def marker_of(series: Series, styles: dict[tuple, int]) -> str:
    return marker_for(styles[tuple(series.fixed.items())])


def draw_measured(ax: Any, s: Series, xs: list[Any], ys: list[float], colour: str,
                  marker: str, errors: list[tuple] | None = None) -> None:  # fmt: skip
    """A measured series: filled markers on a solid line, 95% intervals as error bars."""
    ax.plot(xs, ys, linestyle="-", marker=marker, color=colour, label=s.label, lw=1.8, ms=6)
    if errors:
        low = [y - e[0] if e[0] is not None else 0 for y, e in zip(ys, errors, strict=True)]
        high = [e[1] - y if e[1] is not None else 0 for y, e in zip(ys, errors, strict=True)]
        ax.errorbar(xs, ys, yerr=[low, high], fmt="none", ecolor=colour, capsize=3, lw=1,
                    alpha=0.8)  # fmt: skip


def draw_predicted(ax: Any, xs: list[Any], ys: list[float], colour: str, marker: str) -> None:
    """A model prediction: hollow markers on a thin dashed line."""
    ax.plot(xs, ys, linestyle="--", marker=marker, mfc="white", color=colour, lw=1.2, ms=5)


def _predicted(axes: tuple[Any, Any], s: Series, colour: str,
               marker: str) -> tuple[list[list[Any]], bool]:  # fmt: skip
    """The model on both panels (speedup, tokens per pass): for a one-point series the whole
    curve, standard (dashed) and charging the measured verify cost (dash-dot), each with its
    recommended k starred; else the standard prediction at each point. Returns (CSV rows,
    whether curves were drawn)."""
    ax_s, ax_t = axes
    if len(s.points) == 1:
        point = s.points[0]
        model = point.row.get("speedup_model") or {}
        bests = [m["recommended_k"] for m in (model, model.get("calibrated")) if m]
        limit = max(MODEL_K, 2 * point.value("k"), *bests)  # both stars in view
        rows: list[list[Any]] = []
        for calibrated, line in ((False, "--"), (True, "-.")):
            curve = model_curve(point, limit, calibrated)
            if not curve:
                continue
            ks, speed, tokens = (list(column) for column in zip(*curve, strict=True))
            ax_s.plot(ks, speed, linestyle=line, color=colour, lw=1.2)
            if not calibrated:  # tokens per pass do not depend on the costs
                ax_t.plot(ks, tokens, linestyle=line, color=colour, lw=1.2)
            best = (model.get("calibrated") if calibrated else model)["recommended_k"]
            if best <= len(curve):
                ax_s.plot([best], [speed[best - 1]], marker="*", ms=14, linestyle="none",
                          color="white" if calibrated else colour, mec=colour if calibrated
                          else "black", mew=1.2 if calibrated else 0.6)  # fmt: skip
            kind = "model_verify_cost" if calibrated else "model"
            rows += [[s.label, kind, k, v, None, None, t] for k, v, t in curve]
        return rows, bool(rows)
    rows = []
    for p in s.points:
        predicted = model_at(p)
        if predicted is not None:
            rows.append([s.label, "model", p.value("k"), predicted[0], None, None, predicted[1]])
    if rows:
        ks = [r[2] for r in rows]
        draw_predicted(ax_s, ks, [r[3] for r in rows], colour, marker)
        draw_predicted(ax_t, ks, [r[6] for r in rows], colour, marker)
    return rows, False


def speedup_vs_k(points: list[Point], palette: Palette, output: Path) -> list[Path]:
    """Speedup (CI bars, model dashed) and mean accepted tokens against k, per strategy."""
    series = series_along(points, "k")
    styles = style_index(series)
    fig, (ax_s, ax_t) = new_figure(2, width=5.6)
    rows: list[list[Any]] = []
    starred = False
    for s in series:
        colour, marker = palette.colour(s.strategy), marker_of(s, styles)
        ks = [p.value("k") for p in s.points]
        speed = [p.row["speedup"] for p in s.points]
        draw_measured(ax_s, s, ks, speed, colour, marker, [_ci(p) for p in s.points])
        predicted, star = _predicted((ax_s, ax_t), s, colour, marker)
        rows += predicted
        starred |= star
        tokens = [p.row["mean_accepted_tokens"] for p in s.points]
        draw_measured(ax_t, s, ks, tokens, colour, marker)
        rows += [[s.label, "measured", p.value("k"), p.row["speedup"], *_ci(p),
                  p.row["mean_accepted_tokens"]] for p in s.points]  # fmt: skip
    for ax in (ax_s, ax_t):  # the baseline: speedup 1, one token per target pass
        ax.axhline(1.0, color="grey", lw=1, linestyle=":")
    ax_s.set(title="Speedup over the baseline", xlabel="k (tokens drafted per step)",
             ylabel="speedup (x)")  # fmt: skip
    ax_t.set(title="Mean accepted tokens per target pass", xlabel="k (tokens drafted per step)",
             ylabel="tokens per target forward pass")  # fmt: skip
    _integer_ticks(ax_s, ax_t)
    legend(fig, model_keys(ax_s, starred))
    return save(fig, output, "speedup_vs_k",
                ["series", "kind", "k", "speedup", "speedup_ci_low", "speedup_ci_high",
                 "mean_accepted_tokens"], rows)  # fmt: skip


def model_keys(ax: Any, starred: bool = False) -> list[Any]:
    """The series' legend entries plus what solid, dashed and the star mean."""
    handles = list(ax.get_legend_handles_labels()[0])
    handles += [Line2D([], [], color="black", marker="o", label="measured (95% CI)"),
                Line2D([], [], color="black", linestyle="--", marker="o", mfc="white",
                       label="predicted by the model")]  # fmt: skip
    if starred:
        handles += [Line2D([], [], color="black", linestyle="-.",
                           label="predicted, verify cost as measured"),
                    Line2D([], [], color="black", marker="*", linestyle="none", ms=11,
                           label="k the model recommends"),
                    Line2D([], [], color="black", marker="*", mfc="white", linestyle="none",
                           ms=11, label="k it recommends with the verify cost")]  # fmt: skip
    return handles


def _integer_ticks(*axes: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def speedup_vs(points: list[Point], axis: str, palette: Palette, output: Path) -> list[Path]:
    """Speedup (CI bars) and the model's prediction (dashed) against one swept setting or
    strategy parameter (`temperature`, `batch_size`, `cactus.delta`, ...)."""
    series = series_along(points, axis)
    styles = style_index(series)
    fig, (ax,) = new_figure(1, width=8.4)
    rows: list[list[Any]] = []
    for s in series:
        colour, marker = palette.colour(s.strategy), marker_of(s, styles)
        xs = [p.value(axis) for p in s.points]
        speed = [p.row["speedup"] for p in s.points]
        draw_measured(ax, s, xs, speed, colour, marker, [_ci(p) for p in s.points])
        predicted = [(p.row.get("speedup_model") or {}).get("predicted_speedup")
                     for p in s.points]  # fmt: skip
        if all(v is not None for v in predicted):
            draw_predicted(ax, xs, predicted, colour, marker)
        rows += [[s.label, p.value(axis), p.row["speedup"], *_ci(p), pred, p.value("k")]
                 for p, pred in zip(s.points, predicted, strict=True)]  # fmt: skip
    ax.axhline(1.0, color="grey", lw=1, linestyle=":")
    title = {"batch_size": "batch size", "temperature": "temperature"}.get(axis, axis)
    ax.set(title=f"Speedup over the baseline against {title}", xlabel=title,
           ylabel="speedup (x)")  # fmt: skip
    if axis in ("batch_size", "top_k"):
        _integer_ticks(ax)
    legend(fig, model_keys(ax))
    name = "speedup_vs_" + axis.replace(".", "_")
    return save(fig, output, name, ["series", axis, "speedup", "speedup_ci_low",
                                    "speedup_ci_high", "predicted_speedup", "k"], rows)
