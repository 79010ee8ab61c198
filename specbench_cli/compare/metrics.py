"""The metrics `specbench compare` knows: names, directions, threshold syntax, row values.

A metric name is a results-row field (`speedup`, `tokens_per_second`, ...) or a member of a
family: `per_position_acceptance.N` (1-based draft position), `quality.NAME` and
`divergence.NAME` (e.g. divergence.kl). Each has a direction: higher is better for speed,
speedup, accepted tokens, acceptance and quality; lower is better for divergence, latency, wall
time and memory. Deterministic metrics reproduce exactly under a fixed seed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from specbench_cli.errors import BadInput
from specbench_cli.registry import did_you_mean
from specbench_cli.results import ResultRow

# metric -> higher is better, in display order; per_position_acceptance.N, quality.* and
# divergence.* slot in after acceptance_rate (see `row_metrics`).
FIXED_METRICS: dict[str, bool] = {
    "speedup": True,
    "tokens_per_second": True,
    "mean_accepted_tokens": True,
    "acceptance_rate": True,
    "time_to_first_token_s": False,
    "time_per_token_median_s": False,
    "time_per_token_p90_s": False,
    "wall_s": False,
    "peak_memory_bytes": False,
}
FAMILIES: dict[str, bool] = {"per_position_acceptance": True, "quality": True, "divergence": False}
DETERMINISTIC = frozenset({"mean_accepted_tokens", "acceptance_rate", *FAMILIES})
# as messages list them
METRIC_NAMES = [*FIXED_METRICS, "per_position_acceptance.N", "quality.NAME", "divergence.NAME"]
INFINITIES = {"inf": math.inf, "-inf": -math.inf}
_PCT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*%")


def higher_is_better(metric: str) -> bool | None:
    """Direction of a metric name; None when compare does not know the name."""
    if metric in FIXED_METRICS:
        return FIXED_METRICS[metric]
    family, _, member = metric.partition(".")
    if family not in FAMILIES or not member:
        return None
    if family == "per_position_acceptance" and not (member.isdigit() and int(member) >= 1):
        return None
    return FAMILIES[family]


def _unknown_metric(metric: str) -> BadInput:
    """An unknown-metric error with a "did you mean" and the list of metric names."""
    return BadInput(f"unknown metric {metric!r}{did_you_mean(metric, METRIC_NAMES)} "
                    f"(known: {', '.join(METRIC_NAMES)})")


def parse_threshold(text: str) -> tuple[str, float]:
    """`METRIC=PCT` -> (metric, pct). PCT needs its % sign, so 0.05 is never taken for 5%."""
    metric, sep, value = (part.strip() for part in text.partition("="))
    if not sep or not metric:
        raise BadInput(f"bad threshold {text!r}: expected METRIC=PCT, e.g. speedup=5%")
    if higher_is_better(metric) is None:
        raise _unknown_metric(metric)
    pct = _PCT.fullmatch(value)
    if not pct:
        raise BadInput(
            f"bad threshold {text!r}: PCT must be a percentage >= 0 with a % sign, e.g. {metric}=5%"
        )
    return metric, float(pct.group(1))


def parse_thresholds(texts: Iterable[str]) -> dict[str, float]:
    """Parse repeated `METRIC=PCT` flags; a metric given twice is an error, not a silent pick."""
    thresholds: dict[str, float] = {}
    for text in texts:
        metric, pct = parse_threshold(text)
        if metric in thresholds:
            raise BadInput(f"threshold for {metric} given twice")
        thresholds[metric] = pct
    return thresholds


def _number(value: Any, where: str) -> float | None:
    """A metric value as a float: None when missing or NaN; an infinite KL is written as the
    string "inf" (JSON has no infinity) and read back as one; anything else is bad input."""
    if value is None:
        return None
    if isinstance(value, str) and value in INFINITIES:
        return INFINITIES[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput(f"{where} is not a number")
    return None if math.isnan(value) else float(value)


def row_metrics(row: ResultRow, where: str) -> dict[str, float]:
    """Every metric a results row reports, by compare's metric name, in display order."""
    raw: dict[str, Any] = {name: row.get(name) for name in list(FIXED_METRICS)[:4]}
    positions = row.get("per_position_acceptance") or []
    if not isinstance(positions, list):
        raise BadInput(f"{where}: per_position_acceptance is not a list")
    raw |= {f"per_position_acceptance.{i}": v for i, v in enumerate(positions, 1)}
    for family in ("quality", "divergence"):
        members = row.get(family) or {}
        if not isinstance(members, dict):
            raise BadInput(f"{where}: {family} is not an object")
        raw |= {f"{family}.{name}": v for name, v in members.items()}
    raw |= {name: row.get(name) for name in list(FIXED_METRICS)[4:]}
    numbers = {name: _number(value, f"{where}: {name}") for name, value in raw.items()}
    return {name: value for name, value in numbers.items() if value is not None}
