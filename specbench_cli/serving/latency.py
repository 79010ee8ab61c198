"""Latency percentiles of each results row: time to first token, time per output token and
end-to-end latency, over the row's finished prompts.

- `ttft_s`: request sent -> first content token of the prompt's first turn.
- `tpot_s`: per prompt, time after the first token over the tokens after it (all turns).
- `e2e_s`: the prompt's requests from send to last byte, all turns (the record's `wall_s`).
Percentiles interpolate linearly between order statistics (numpy's default).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specbench_cli.results import PromptRecord, ResultRow

PERCENTILES = (50, 90, 99)
MEASURES = {"ttft_s": "ttft_s", "tpot_s": "tpot_s", "e2e_s": "wall_s"}  # row key: record key


def percentiles(values: list[float]) -> dict[str, float] | None:
    """{"p50", "p90", "p99"} of the values; None without any."""
    if not values:
        return None
    points = np.percentile(np.asarray(values, dtype=float), PERCENTILES)
    return {f"p{p}": float(v) for p, v in zip(PERCENTILES, points, strict=True)}


def _in_row(row: ResultRow, record: PromptRecord) -> bool:
    return (record.get("status") == "ok" and record.get("suite") == row["suite"]
            and record.get("strategy") == row["strategy"]
            and record.get("drafter") == row["drafter"]
            and row.get("category") in (None, record.get("category")))  # fmt: skip


def add_latency(rows: list[ResultRow], records: list[PromptRecord]) -> None:
    """Set each row's `latency`: {measure: {p50, p90, p99} or None}."""
    for row in rows:
        group = [r for r in records if _in_row(row, r)]
        latency: dict[str, Any] = {}
        for name, key in MEASURES.items():
            values = [r[key] for r in group if isinstance(r.get(key), int | float)]
            latency[name] = percentiles(values)
        row["latency"] = latency
