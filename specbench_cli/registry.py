"""Name -> implementation registries, the `name:key=value,...` spec form and its value parsing.

Strategies, drafters and scorers are looked up by name through one `Registry` each. Entries are
lazy `"module:attribute"` strings, so listing names imports nothing (`specbench --help` and the
config checks stay cheap). Parameters are parsed by the type of their default, the same way for
every kind, and every unknown name gets the same "did you mean" hint. Imports nothing of ours.
"""

from __future__ import annotations

import importlib
import math
import numbers
from collections.abc import Iterator, Mapping
from difflib import get_close_matches
from typing import Any

SPEC_FORM = "expected 'name' or 'name:key=value,key=value'"
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_KINDS = {bool: bool, str: str, int: numbers.Integral, float: numbers.Real}


def did_you_mean(word: object, choices: Any) -> str:
    """`"; did you mean 'x'?"` for the closest choice, or `""` when none is close."""
    hint = get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f"; did you mean {hint[0]!r}?" if hint else ""


class Registry(Mapping[str, str]):
    """Lazy registry of one kind of component, e.g. `Registry("strategy", {"sps": "m:SpS"})`."""

    def __init__(self, kind: str, entries: dict[str, str]) -> None:
        self.kind = kind
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> str:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def check(self, name: object) -> str:
        """`name` if registered; else `ValueError` with a hint and the known names."""
        if not isinstance(name, str) or name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}{did_you_mean(name, self._entries)} "
                             f"(available: {', '.join(self.names())})")  # fmt: skip
        return name

    def load(self, name: str) -> Any:
        """Import and return the implementation registered under `name`."""
        module, _, attr = self._entries[self.check(name)].partition(":")
        return getattr(importlib.import_module(module), attr)


def parse_spec(spec: object) -> tuple[str, dict[str, str]]:
    """`name` or `name:key=value,...` -> (name, raw string values); a trailing comma is fine."""
    if not isinstance(spec, str):
        raise ValueError(f"bad spec {spec!r}: {SPEC_FORM}")
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise ValueError(f"bad spec {spec!r}: {SPEC_FORM}")
    params: dict[str, str] = {}
    for item in rest.split(","):
        if not item.strip():
            continue
        key, eq, value = (part.strip() for part in item.partition("="))
        if not eq or not key or not value:
            raise ValueError(f"bad spec {spec!r}: {item.strip()!r} is not key=value")
        if key in params:
            raise ValueError(f"bad spec {spec!r}: {key!r} given twice")
        params[key] = value
    return name, params


def coerce_params(
    what: str, defaults: dict[str, Any], params: Mapping[str, Any]
) -> dict[str, Any]:
    """Defaults merged with `params`, each checked against the type of its default (bool, str,
    int or finite float); strings, as they come from a spec, are parsed to that type.
    `what` names the owner in messages, e.g. "strategy 'cactus'"."""
    merged = dict(defaults)
    for key, value in params.items():
        if key not in defaults:
            known = ", ".join(defaults) or "none"
            raise ValueError(f"{what} has no parameter {key!r}{did_you_mean(key, defaults)} "
                             f"(parameters: {known})")  # fmt: skip
        merged[key] = _coerce(what, key, type(defaults[key]), value)
    return merged


def _coerce(what: str, key: str, kind: type, value: Any) -> Any:
    expects = f"{what}: parameter {key!r} expects"
    if kind is bool:
        text = str(value).strip().lower() if isinstance(value, str) else None
        if isinstance(value, bool) or text in _TRUE + _FALSE:
            return value if isinstance(value, bool) else text in _TRUE
        raise ValueError(f"{expects} true or false, got {value!r}")
    try:
        parsed = kind(value) if isinstance(value, str) else value
        if isinstance(parsed, bool) or not isinstance(parsed, _KINDS[kind]):
            raise TypeError
        parsed = kind(parsed)
        if kind is float and not math.isfinite(parsed):
            raise TypeError
        return parsed
    except (TypeError, ValueError):
        raise ValueError(f"{expects} a finite {kind.__name__}, got {value!r}") from None


def spec_label(name: str, params: dict[str, Any]) -> str:
    """`name` or `name:key=value,...` with every parameter, sorted keys and floats in repr form,
    so labels are stable keys in result files and parse back to the same component."""
    if not params:
        return name
    items = (f"{key}={value!r}" if isinstance(value, float)
             else f"{key}={str(value).lower() if isinstance(value, bool) else value}"
             for key, value in sorted(params.items()))  # fmt: skip
    return f"{name}:{','.join(items)}"
