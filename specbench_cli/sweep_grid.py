"""A sweep's grid: which settings take several values, parsed from flags or a YAML file.

Grammar (docs/sweeps.md has the user-facing version):

- Grid settings (`--k`, `--temperature`, `--batch-size`, `--top-k`, `--top-p`): one value or
  a comma list, `--k 1,2,4,8`. In YAML: a scalar, a list (`k: [1, 2, 4, 8]`) or the same comma
  string. Every combination is a grid point; each point runs the baseline and every strategy.
- Strategy parameters: `name:key=v1,v2,...,key2=w1,...`. Items are separated by commas; an
  item with `=` starts a parameter, an item without one is one more value of the parameter
  before it. So `cactus:delta=0.25,0.5,1` is three strategies and
  `tas:eps=0.05,0.09,alpha=0.2,0.3` four (every combination). A value cannot itself contain
  a comma or `=`. In YAML a strategy may also be a mapping, `{name: cactus, delta: [0.25, 1]}`.
  Strategy variants are contenders within each point: they share its baseline.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specbench_cli.config import DEFAULT_STRATEGIES, FIELDS, RunConfig, build_config, validate
from specbench_cli.errors import BadInput

# grid settings in point order (the last varies fastest) and the type of their values
AXES: dict[str, type] = {"temperature": float, "top_k": int, "top_p": float,
                         "batch_size": int, "k": int}  # fmt: skip
ALWAYS_IN_POINT = ("k", "temperature")  # a point names these even when they are not swept


def flag(axis: str) -> str:
    return "--" + axis.replace("_", "-")


def parse_values(text: Any, axis: str, where: str | None = None) -> list[Any]:
    """`"1,2,4"`, a number or a list of numbers -> the axis's typed values, each once."""
    where = where or flag(axis)
    if isinstance(text, list):
        items = text
    elif isinstance(text, str):
        items = text.split(",")
    else:
        items = [text]
    values = [_typed(item, AXES[axis], where) for item in items]
    if not values:
        raise BadInput(f"{where}: no value given")
    for i, value in enumerate(values):
        if value in values[:i]:
            raise BadInput(f"{where}: {value} given twice")
    return values


def _typed(item: Any, kind: type, where: str) -> int | float:
    what = "an integer" if kind is int else "a number"
    if isinstance(item, str):
        text = item.strip()
        if not text:
            raise BadInput(f"{where}: empty value in the list")
        try:
            item = int(text) if kind is int else float(text)
        except ValueError:
            raise BadInput(f"{where}: {text!r} is not {what}") from None
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        raise BadInput(f"{where}: {item!r} is not {what}")
    if not math.isfinite(item):
        raise BadInput(f"{where}: {item!r} is not a finite number")
    if kind is int and not float(item).is_integer():
        raise BadInput(f"{where}: {item!r} is not {what}")
    return kind(item)


@dataclass(frozen=True)
class StrategyGrid:
    """One strategy entry with list-valued parameters, e.g. `cactus:delta=0.25,0.5,1`."""

    name: str
    params: tuple[tuple[str, tuple[str, ...]], ...]  # (key, values) in the order given

    def variants(self) -> list[str]:
        """One `name:key=value,...` spec per combination of values."""
        if not self.params:
            return [self.name]
        keys = [key for key, _ in self.params]
        combos = itertools.product(*(values for _, values in self.params))
        return [f"{self.name}:" + ",".join(f"{k}={v}" for k, v in zip(keys, combo, strict=True))
                for combo in combos]  # fmt: skip

    def swept(self) -> list[str]:
        """The parameters given more than one value."""
        return [key for key, values in self.params if len(values) > 1]

    def spec(self) -> str:
        """The list form back, `name:key=v1,v2,...`."""
        items = ",".join(f"{key}={','.join(values)}" for key, values in self.params)
        return f"{self.name}:{items}" if items else self.name


def parse_strategy_grid(text: Any) -> StrategyGrid:
    """`name[:key=v1,v2,...,key2=...]` -> StrategyGrid (grammar in the module docstring)."""
    form = "expected 'name' or 'name:key=v1,v2,...,key2=w1,...'"
    if not isinstance(text, str):
        raise BadInput(f"--strategy {text!r}: {form}")
    name, _, rest = (part.strip() for part in text.partition(":"))
    if not name:
        raise BadInput(f"--strategy {text!r}: {form}")
    params: dict[str, list[str]] = {}
    items = [item.strip() for item in rest.split(",")] if rest else []
    if items and not items[-1]:
        items.pop()  # one trailing comma is fine, as in run's specs
    current = None
    for item in items:
        key, eq, value = (part.strip() for part in item.partition("="))
        if eq:
            if not key or key in params:
                raise BadInput(f"--strategy {text!r}: " + (f"{key!r} given twice" if key
                               else f"{item!r} has no parameter name"))  # fmt: skip
            current = params[key] = []
        if current is None or not (value if eq else key):
            raise BadInput(f"--strategy {text!r}: {item!r} is not key=value or a value after "
                           f"one ({form})")  # fmt: skip
        value = value if eq else key
        if value in current:
            raise BadInput(f"--strategy {text!r}: {value!r} given twice")
        current.append(value)
    return StrategyGrid(name, tuple((k, tuple(v)) for k, v in params.items()))


def strategy_from_yaml(entry: Any, where: str) -> StrategyGrid:
    """A YAML strategy entry: a spec string, or `{name: ..., key: value or [values]}`."""
    if isinstance(entry, str):
        return parse_strategy_grid(entry)
    if not isinstance(entry, dict) or "name" not in entry:
        raise BadInput(f"{where}: strategy entries must be 'name:key=value' or a mapping with "
                       "'name'")  # fmt: skip
    items = []
    for key, value in entry.items():
        if key != "name":
            values = value if isinstance(value, list) else [value]
            items.append(f"{key}=" + ",".join(_yaml_scalar(v) for v in values))
    return parse_strategy_grid(f"{entry['name']}:{','.join(items)}" if items else entry["name"])


def _yaml_scalar(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass
class Sweep:
    """The settings every point shares, the grid axes, and the strategy entries."""

    base: RunConfig  # swept settings hold their first value
    axes: dict[str, list[Any]]  # grid setting -> values, in AXES order (swept or not)
    strategies: list[StrategyGrid]

    def points(self) -> list[dict[str, Any]]:
        """Every grid point: the values of the settings that define it."""
        named = [a for a in self.axes if a in ALWAYS_IN_POINT or len(self.axes[a]) > 1]
        combos = itertools.product(*(self.axes[a] for a in named))
        return [dict(zip(named, combo, strict=True)) for combo in combos]

    def point_config(self, point: dict[str, Any]) -> RunConfig:
        return dataclasses.replace(self.base, **point)

    def swept_params(self) -> set[tuple[str, str]]:
        """(strategy name, parameter) pairs given several values."""
        return {(s.name, key) for s in self.strategies for key in s.swept()}

    def to_dict(self) -> dict[str, Any]:
        """The sweep as a YAML-ready mapping: `--config` of this file repeats the sweep."""
        data = self.base.to_dict()
        for axis, values in self.axes.items():
            data[axis] = values if len(values) > 1 else values[0]
        data["strategies"] = [s.spec() for s in self.strategies]
        return data


def build_sweep(yaml_path: Path | None, settings: dict[str, Any], axes: dict[str, Any],
                strategies: list[str] | None) -> Sweep:  # fmt: skip
    """Defaults < the YAML file < flags (None: not given); every point validated, no model
    loaded. `axes` holds the raw flag text of grid settings (`"1,2,4"`)."""
    file_settings, file_axes, file_strategies = (read_sweep_file(yaml_path) if yaml_path
                                                 else ({}, {}, None))  # fmt: skip
    grid = {**file_axes, **{a: parse_values(v, a) for a, v in axes.items() if v is not None}}
    entries = ([parse_strategy_grid(s) for s in strategies] if strategies
               else file_strategies or [parse_strategy_grid(s) for s in DEFAULT_STRATEGIES])
    for axis in grid:
        if axis not in FIELDS:
            raise BadInput(f"{flag(axis)}: this version of specbench has no {axis} setting")
    values = {**file_settings, **{k: v for k, v in settings.items() if v is not None}}
    values.update({axis: vals[0] for axis, vals in grid.items()})
    values["strategies"] = [v for s in entries for v in s.variants()]
    base = build_config(None, values)
    full = {a: grid.get(a, [getattr(base, a)]) for a in AXES if a in FIELDS}
    sweep = Sweep(base, full, entries)
    for point in sweep.points():
        try:
            validate(sweep.point_config(point))
        except BadInput as exc:
            raise BadInput(f"grid point {point}: {exc}") from None
    return sweep


def read_sweep_file(path: Path) -> tuple[dict[str, Any], dict[str, list], list[StrategyGrid]]:
    """A sweep YAML: run settings, where grid settings and strategy parameters may be lists.
    Returns (plain settings, grid axes, strategy entries or None)."""
    from specbench_cli.yaml_file import read_yaml

    data = read_yaml(path, f"--config {path}") or {}
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a mapping of settings at the top level")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise BadInput(f"{path}: unknown setting {unknown[0]!r} (settings: "
                       f"{', '.join(sorted(FIELDS))})")  # fmt: skip
    axes = {a: parse_values(data.pop(a), a, f"{path}: {a}") for a in AXES if a in data}
    strategies = None
    if "strategies" in data:
        entries = data.pop("strategies")
        strategies = [strategy_from_yaml(e, str(path))
                      for e in (entries if isinstance(entries, list) else [entries])]
    if "suites" in data:
        suites = data["suites"]
        data["suites"] = [str(s) for s in (suites if isinstance(suites, list) else [suites])]
    return data, axes, strategies
