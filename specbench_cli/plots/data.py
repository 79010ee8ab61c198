"""Results rows -> plot points: one `Point` per strategy row, with its grid values, grouped into
series along an axis (k, temperature, batch size or a strategy parameter).

A series is everything that stays fixed along the axis: the run (when several are plotted),
the suite (when several), the strategy (its label without the axis's parameter) and the values
of the other grid settings. Reads results files only; no plotting here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specbench_cli.results import BASELINE, read_results
from specbench_cli.speedup_model import K_MAX

SETTINGS = ("k", "temperature", "batch_size", "top_k", "top_p")


@dataclass
class Point:
    run: str  # run folder name
    suite: str
    drafter: str
    strategy: str  # label, e.g. "cactus:delta=0.5"
    name: str  # registry name, e.g. "cactus"
    params: dict[str, Any]
    grid: dict[str, Any]  # settings (k, temperature, ...) and `name.param` values
    row: dict[str, Any] = field(repr=False)

    def value(self, axis: str) -> Any:
        return self.grid.get(axis)


@dataclass
class Series:
    key: tuple  # what stays fixed along the axis
    label: str
    name: str  # strategy registry name (colour family)
    strategy: str  # strategy label without the axis parameter (colour)
    fixed: dict[str, Any]  # other grid values (line style)
    points: list[Point]


def _setting(data: dict[str, Any], row: dict[str, Any], name: str) -> Any:
    """A setting of a row: its grid value, its own field, else the run's config."""
    grid = row.get("grid") or {}
    if name in grid:
        return grid[name]
    if name in row and not isinstance(row[name], (dict, list)):
        return row[name]
    value = data.get("config", {}).get(name)
    return None if isinstance(value, list) else value


def load_points(run_dirs: list[Path]) -> list[Point]:
    """Strategy rows of every run (baseline and per-category rows left out)."""
    points = []
    names = [Path(r).name for r in run_dirs]
    unique = len(set(names)) == len(names)
    for run_dir, name in zip(run_dirs, names, strict=True):
        data = read_results(run_dir)
        label = name if unique and name else str(run_dir)
        for row in data["results"]:
            if row["strategy"] == BASELINE or row.get("category"):
                continue
            grid = {s: _setting(data, row, s) for s in SETTINGS}
            grid = {s: v for s, v in grid.items() if v is not None}
            grid.update({k: v for k, v in (row.get("grid") or {}).items() if "." in k})
            points.append(Point(label, row["suite"], row.get("drafter") or "", row["strategy"],
                                row.get("strategy_name", row["strategy"].split(":")[0]),
                                dict(row.get("params") or {}), grid, row))  # fmt: skip
    return points


def varying(points: list[Point]) -> dict[str, list[Any]]:
    """Grid settings and strategy parameters that take more than one value, with the values."""
    values: dict[str, set] = defaultdict(set)
    for p in points:
        for axis, value in p.grid.items():
            values[axis].add(value)
    return {a: sorted(v) for a, v in values.items() if len(v) > 1}


def strategy_without(point: Point, axis: str) -> str:
    """The strategy label with the axis's parameter left out (`cactus:delta=0.5` along
    `cactus.delta` -> `cactus`)."""
    name, _, param = axis.partition(".")
    if not param or name != point.name:
        return point.strategy
    rest = {k: v for k, v in point.params.items() if k != param}
    from specbench_cli.registry import spec_label

    return spec_label(point.name, rest)


def series_along(points: list[Point], axis: str) -> list[Series]:
    """Points that have `axis`, grouped into series, each sorted by the axis value. Runs are
    told apart only where they would put two points at one axis value (three runs at k = 2, 4
    and 8 make one curve)."""
    along = [p for p in points if p.value(axis) is not None]
    groups = _groups(along, axis, by_run=False)
    if any(len({p.value(axis) for p in g}) < len(g) for g in groups.values()):
        groups = _groups(along, axis, by_run=True)
    labels = {"suite": len({p.suite for p in along}) > 1,
              "drafter": len({p.drafter for p in along}) > 1}
    series = []
    for (run, suite, drafter, strategy, fixed), members in groups.items():
        parts = [strategy] + [f"{_short(a)}={v}" for a, v in fixed]
        parts += [f"[{drafter}]"] if labels["drafter"] else []
        parts += [suite] if labels["suite"] else []
        parts += [f"({run})"] if run else []
        members.sort(key=lambda p: p.value(axis))
        series.append(Series((run, suite, drafter, strategy, fixed), " ".join(parts),
                             members[0].name, strategy, dict(fixed), members))  # fmt: skip
    series.sort(key=lambda s: (s.name, s.strategy, [str(v) for v in s.fixed.values()], s.key))
    return series


def _groups(points: list[Point], axis: str, by_run: bool) -> dict[tuple, list[Point]]:
    others = [a for a in varying(points) if a != axis and "." not in a]
    groups: dict[tuple, list[Point]] = defaultdict(list)
    for p in points:
        fixed = tuple((a, p.value(a)) for a in others)
        key = (p.run if by_run else "", p.suite, p.drafter, strategy_without(p, axis), fixed)
        groups[key].append(p)
    return groups


def _short(axis: str) -> str:
    return {"temperature": "T", "batch_size": "B"}.get(axis, axis)


def deepest(points: list[Point]) -> list[Point]:
    """Per series along k, the point with the largest k: the longest acceptance profile."""
    return [s.points[-1] for s in series_along(points, "k")]


def model_curve(point: Point, k_limit: int = K_MAX,
                calibrated: bool = False) -> list[tuple[int, float, float]]:  # fmt: skip
    """(k, predicted speedup, predicted tokens per target pass) for k = 1..k_limit, from the
    row's speedup model (or its variant that charges the measured verify cost): tokens =
    S(k) * (1 + k c)."""
    model = point.row.get("speedup_model") or {}
    if calibrated:
        model = model.get("calibrated") or {}
    c = model.get("cost_ratio") or 0.0
    curve = list(model.get("predicted_speedup_by_k") or [])[:k_limit]
    return [(k, s, s * (1 + k * c)) for k, s in enumerate(curve, 1)]


def model_at(point: Point) -> tuple[float, float] | None:
    """(predicted speedup, predicted tokens per target pass) at the point's own k."""
    curve = model_curve(point, max(K_MAX, point.value("k")))
    k = point.value("k")
    return curve[k - 1][1:] if len(curve) >= k else None
