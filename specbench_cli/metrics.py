"""Per-prompt records -> aggregate rows. Pure functions over counts; conventions in results.py.

Counts are summed first and divided last (never a mean of per-prompt means), so a long prompt
weighs by its tokens and steps. Speedup pairs each strategy with the baseline on the prompts
that finished under both, and its interval resamples those prompts (paired bootstrap).

Batches: throughput divides tokens by each record's share of its batches' wall time
(`batch_share_s`, which is `wall_s` at batch 1), so it is a batch's tokens over that batch's wall
time, summed over batches. The per-request view is each record's own latency per token,
`wall_s / new_tokens`, as a median and 90th percentile over requests.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

import numpy as np

from specbench_cli.acceptance import PositionCounts, count_positions
from specbench_cli.bootstrap import mean_difference, paired_interval
from specbench_cli.results import BASELINE, PromptRecord, ResultRow, throughput_wall_s
from specbench_cli.rounds import timing_spread
from specbench_cli.speedup_model import model_summary


def _ok(records: list[PromptRecord]) -> list[PromptRecord]:
    return [r for r in records if r.get("status") == "ok"]


def acceptance_counts(records: list[PromptRecord], k: int) -> dict[str, Any]:
    """Step-weighted acceptance figures over all speculative steps of the given records."""
    if any("engine_counts" in r for r in records):  # a serving engine's own counts
        from specbench_cli.serving.counts import engine_acceptance

        return engine_acceptance(records)
    positions = count_positions(
        (pair for r in records
         for pair in zip(r.get("accepted_lengths", []), r.get("drafted_lengths", []),
                         strict=True)), k)  # fmt: skip
    forward = sum(r.get("target_forward_passes", 0) for r in records)
    emitted = sum(r.get("new_tokens", 0) for r in records)
    drafted = sum(positions.drafted)
    return {
        # tokens per target forward pass; the prefill pass emits the first token
        "mean_accepted_tokens": emitted / forward if forward else 0.0,
        "acceptance_rate": sum(positions.accepted) / drafted if drafted else None,
        "per_position_acceptance": positions.joint(),
        "per_position_acceptance_conditional": positions.conditional(),
        "per_position_acceptance_unconditional": positions.unconditional(),
        "accepted_length_histogram": positions.histogram,
        "target_forward_passes": forward,
        "steps": positions.steps,
        "drafting_steps": positions.drafting_steps,
        "positions": positions,
    }


def decode_step_s(records: list[PromptRecord]) -> float | None:
    """Mean time of one decoding step (prefills excluded) over the records; None if none.
    Records without `prefill_s` (older files) count their first turn's prefill only."""
    time = sum(r["wall_s"] - r.get("prefill_s", r.get("ttft_s", 0.0)) for r in records)
    steps = sum(r["target_forward_passes"] - len(r.get("output_text") or [None])
                for r in records)  # fmt: skip
    return time / steps if steps > 0 and time > 0 else None


def speedup_model_row(records: list[PromptRecord], baseline: list[PromptRecord],
                      positions: PositionCounts, k: int) -> dict[str, Any] | None:  # fmt: skip
    """The model's prediction from this contender's acceptance profile and its measured cost
    ratio c = (drafter time per drafted token) / (the baseline's time per decoding step)."""
    target_step = decode_step_s(baseline)
    drafted = sum(positions.drafted)
    if target_step is None or not drafted:
        return None
    cost_ratio = sum(r["draft_s"] for r in records) / drafted / target_step
    own_step = decode_step_s(records)
    drafting = sum(r["draft_s"] for r in records) / max(positions.steps, 1)
    # the model charges a verify pass as one ordinary step; this is what it measured to cost
    verify_ratio = (own_step - drafting) / target_step if own_step else None
    return model_summary(positions.reach(), positions.tail(), cost_ratio, k, verify_ratio)


def tokens_per_second(records: list[PromptRecord]) -> float:
    wall = sum(throughput_wall_s(r) for r in records)
    return sum(r["new_tokens"] for r in records) / wall if wall > 0 else 0.0


def time_per_token(records: list[PromptRecord]) -> tuple[float, float]:
    """(median, 90th percentile) over requests of each one's latency per output token,
    `wall_s / new_tokens`; zeros when no record generated a token."""
    per_request = [r["wall_s"] / r["new_tokens"] for r in records if r["new_tokens"] > 0]
    if not per_request:
        return 0.0, 0.0
    return float(np.median(per_request)), float(np.percentile(per_request, 90))


def paired_speedup_ci(strategy: list[PromptRecord], baseline: list[PromptRecord]) -> list[float]:
    """95% interval of the speedup (sum tokens / sum time of the strategy over the same of the
    baseline) over prompts, `strategy[i]` paired with `baseline[i]`; `[]` below the minimum
    number of prompts (bootstrap.py). At batch N a record's time is its share of its batches."""
    tok_s, tok_b = (np.array([r["new_tokens"] for r in side], dtype=float)
                    for side in (strategy, baseline))  # fmt: skip
    wall_s, wall_b = (np.array([throughput_wall_s(r) for r in side], dtype=float)
                      for side in (strategy, baseline))  # fmt: skip

    def speedup(idx: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return ((tok_s[idx].sum(1) / wall_s[idx].sum(1))
                    / (tok_b[idx].sum(1) / wall_b[idx].sum(1)))  # fmt: skip

    interval = paired_interval(speedup, len(strategy), ratio=True)
    return [] if interval is None else [interval.low, interval.high]


def aggregate(
    records: list[PromptRecord], strategy_info: dict[str, dict[str, Any]], k: int
) -> list[ResultRow]:
    """One row per (suite, category?, strategy, drafter); categories only when a suite has >1."""
    groups: dict[tuple, list[PromptRecord]] = defaultdict(list)
    for r in records:
        groups[(r["suite"], None, r["strategy"], r["drafter"])].append(r)
    categories = defaultdict(set)
    for r in records:
        categories[r["suite"]].add(r.get("category") or r["suite"])
    for r in records:
        if len(categories[r["suite"]]) > 1:
            groups[(r["suite"], r.get("category"), r["strategy"], r["drafter"])].append(r)

    rows: list[ResultRow] = []
    for (suite, category, strategy, drafter), group in groups.items():
        base_key = (suite, category, BASELINE, "none")
        baseline = {r["prompt_id"]: r for r in _ok(groups.get(base_key, []))}
        ok = _ok(group)
        paired = [r for r in ok if r["prompt_id"] in baseline]
        base_paired = [baseline[r["prompt_id"]] for r in paired]
        info = strategy_info.get(strategy, {"name": strategy, "params": {}})
        # without any baseline (a server run with no --baseline-server) the row's own speed
        tps = tokens_per_second(paired if baseline else ok) if ok else 0.0
        base_tps = tokens_per_second(base_paired) if base_paired else None
        shape = info.get("shape") or {}
        counts = acceptance_counts(ok, shape.get("depth") or k)  # trees: per depth
        wall = sum(throughput_wall_s(r) for r in ok)
        latency = sum(r["wall_s"] for r in ok)
        ttfts = [r["ttft_s"] for r in ok if r.get("ttft_s") is not None]
        tpot_median, tpot_p90 = time_per_token(ok)
        row: ResultRow = {
            "strategy": strategy,
            "strategy_name": info["name"],
            "params": info["params"],
            "drafter": drafter,
            "kind": shape.get("kind", ""),
            "branches": shape.get("branches", 0),
            "depth": shape.get("depth", 0),
            "nodes": shape.get("nodes", 0),
            "mean_tree_nodes": _mean_nodes(ok),
            "suite": suite,
            "category": category,
            "batch_size": max((r.get("batch_size", 1) for r in group), default=1),
            "num_prompts": len(ok),
            "num_failed": len(group) - len(ok),
            "new_tokens": sum(r["new_tokens"] for r in ok),
            "wall_s": wall,
            "tokens_per_second": tps,
            "baseline_tokens_per_second": base_tps,
            "speedup": tps / base_tps if base_tps else None,
            "speedup_ci": [] if strategy == BASELINE else paired_speedup_ci(paired, base_paired),
            "num_paired": len(paired),
            "mean_accepted_tokens": counts["mean_accepted_tokens"],
            "acceptance_rate": counts["acceptance_rate"],
            **_position_forms(counts, strategy == BASELINE),
            "target_forward_passes": counts["target_forward_passes"],
            "steps": counts["steps"],
            "drafting_steps": counts.get("drafting_steps"),
            "time_to_first_token_s": statistics.median(ttfts) if ttfts else None,
            "time_per_token_median_s": tpot_median,
            "time_per_token_p90_s": tpot_p90,
            "peak_memory_bytes": _max_known(ok, "peak_memory_bytes"),
            "timing_noise": _median_spread(ok),
            "draft_time_share": _draft_share(ok, latency),
            "divergence": _divergence(ok),
            "quality": _quality(ok),
            "quality_delta": {} if strategy == BASELINE else _quality_delta(paired, baseline),
            # the model describes chains; trees and server counts have no per-step profile
            "speedup_model": None if strategy == BASELINE or shape.get("kind") == "tree"
            or counts.get("positions") is None
            else speedup_model_row(paired, base_paired, counts["positions"], k),
        }
        rows.append(row)
    rows.sort(key=lambda r: (r["suite"], r["category"] or "", r["strategy"] != BASELINE,
                             r["strategy"], r["drafter"]))
    return rows


def _median_spread(records: list[PromptRecord]) -> float | None:
    """Median over records of the spread of their round times; None without repeated rounds."""
    spreads = [s for s in map(timing_spread, records) if s is not None]
    return statistics.median(spreads) if spreads else None


def timing_noise(records: list[PromptRecord]) -> dict[str, Any] | None:
    """The run's own timing noise: the median over prompts of each prompt's (max - min) / median
    of its round times, per contender and over all; None when no prompt ran more than once."""
    ok = _ok(records)
    overall = _median_spread(ok)
    if overall is None:
        return None
    by_strategy: dict[str, list[PromptRecord]] = defaultdict(list)
    for r in ok:
        by_strategy[r["strategy"]].append(r)
    return {"overall": overall, "rounds": max(r.get("rounds", 1) for r in ok),
            "by_strategy": {s: _median_spread(rs) for s, rs in sorted(by_strategy.items())}}


def _max_known(records: list[PromptRecord], key: str) -> int | None:
    """The largest value; None when a record does not know it (server records)."""
    values = [r.get(key) for r in records]
    return None if None in values else max(values, default=0)


def _draft_share(records: list[PromptRecord], wall: float) -> float | None:
    draft = [r.get("draft_s") for r in records]
    if None in draft:
        return None
    return sum(draft) / wall if wall else 0.0


POSITION_FORMS = ("per_position_acceptance", "per_position_acceptance_conditional",
                  "per_position_acceptance_unconditional", "accepted_length_histogram")


def _position_forms(counts: dict[str, Any], baseline: bool) -> dict[str, list | None]:
    """The per-position figures of a row; empty lists for the baseline (nothing drafted),
    None where the records cannot tell (a serving engine reports only some)."""
    return {name: [] if baseline else counts.get(name) for name in POSITION_FORMS}


def _mean_nodes(records: list[PromptRecord]) -> float:
    """Nodes verified per speculative step (for chains: drafted tokens per step)."""
    nodes = [n for r in records for n in r.get("drafted_nodes", r.get("drafted_lengths") or [])]
    return sum(nodes) / len(nodes) if nodes else 0.0


def _divergence(records: list[PromptRecord]) -> dict[str, float | None]:
    """Mean KL(pi || q) and TV(pi, q) per emitted token (bonus positions and baseline add 0);
    None where records carry no audit (a serving engine exposes no distributions)."""
    if any(r.get(key, 0.0) is None for r in records for key in ("kl_sum", "tv_sum")):
        return {"kl": None, "tv": None}
    tokens = sum(r["new_tokens"] for r in records)
    if not tokens:
        return {"kl": 0.0, "tv": 0.0}
    return {
        "kl": sum(r.get("kl_sum", 0.0) for r in records) / tokens,
        "tv": sum(r.get("tv_sum", 0.0) for r in records) / tokens,
    }


def _quality(records: list[PromptRecord]) -> dict[str, float]:
    """Mean score per metric over the records that have one (None = not scorable)."""
    values: dict[str, list[float]] = defaultdict(list)
    for r in records:
        for metric, value in (r.get("scores") or {}).items():
            if value is not None:
                values[metric].append(float(value))
    return {m: sum(v) / len(v) for m, v in sorted(values.items())}


def _quality_delta(
    records: list[PromptRecord], baseline: dict[str, PromptRecord]
) -> dict[str, dict[str, Any]]:
    """Strategy minus baseline per metric over the prompts scored on both (same prompts, same
    seeds): `{value, low, high, significant, n}`; `low` and `high` are None below the minimum
    number of prompts, and `significant` (the interval excludes 0) is then false."""
    metrics = sorted({m for r in records for m in (r.get("scores") or {})})
    out: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        base = [(baseline[r["prompt_id"]].get("scores") or {}).get(metric) for r in records]
        mine = [(r.get("scores") or {}).get(metric) for r in records]
        try:
            delta, n, interval = mean_difference(base, mine)
        except ValueError:  # no prompt scored on both sides
            continue
        out[metric] = {"value": delta, "low": interval.low if interval else None,
                       "high": interval.high if interval else None,
                       "significant": bool(interval and interval.excludes(0.0)), "n": n}
    return out
