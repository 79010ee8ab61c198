"""Acceptance figures of server records, from the counts each engine reported.

A record's `engine_counts` holds what its engine reported for that prompt (`window` None), or,
for engines with server-wide counters, the counts of the whole round the prompt ran in (`window`
names the round, `window_size` its prompts). A round counts once, and only when all its prompts
are in the group being aggregated and finished; otherwise, like any count an engine does not
report, the figure is None. Nothing is estimated.

Tokens per target forward pass (`mean_accepted_tokens`) comes from the identity that every
target pass emits its accepted drafts plus one token (the prefill pass emits one):
passes = new tokens - accepted drafts.
"""

from __future__ import annotations

from typing import Any

from specbench_cli.results import PromptRecord
from specbench_cli.serving.protocol import combine

FIELDS = ("drafted", "accepted", "drafts", "accepted_per_position")


def _sum_counts(records: list[PromptRecord]) -> dict[str, Any] | None:
    """Totals over the records (each round once); None if any record's counts are unknown or a
    round is not wholly inside `records`."""
    totals: dict[str, Any] = {"drafted": 0, "accepted": 0, "drafts": 0,
                              "accepted_per_position": []}  # fmt: skip
    windows: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        counts = r.get("engine_counts")
        if not isinstance(counts, dict):
            return None
        if counts.get("window") is None:
            _add(totals, counts)
        else:
            windows.setdefault(str(counts["window"]), []).append(counts)
    for members in windows.values():
        if len(members) != members[0].get("window_size"):
            return None
        _add(totals, members[0])
    return totals


def _add(totals: dict[str, Any], counts: dict[str, Any]) -> None:
    for key in FIELDS:
        totals[key] = combine(totals[key], counts.get(key))


def engine_acceptance(records: list[PromptRecord]) -> dict[str, Any]:
    """The figures `metrics.acceptance_counts` returns, for finished server records."""
    totals = _sum_counts(records)
    tokens = sum(r.get("new_tokens", 0) for r in records)
    accepted = None if totals is None else totals["accepted"]
    drafted = None if totals is None else totals["drafted"]
    passes = None if accepted is None else tokens - accepted
    return {
        "mean_accepted_tokens": (tokens / passes if passes else 0.0) if passes is not None
        else None,
        "acceptance_rate": accepted / drafted if accepted is not None and drafted else None,
        "per_position_acceptance": _per_position(totals),
        "target_forward_passes": passes,
        "steps": None if totals is None else totals["drafts"],
    }


def _per_position(totals: dict[str, Any] | None) -> list[float] | None:
    """Accepted drafts at each position / drafts, when every draft had the full length (so
    each position was drafted in every draft); otherwise the denominators are unknown: None."""
    if totals is None or not totals["accepted_per_position"] or not totals["drafts"]:
        return None
    per_pos, drafts = totals["accepted_per_position"], totals["drafts"]
    if totals["drafted"] != drafts * len(per_pos):
        return None
    return [a / drafts for a in per_pos]
