"""Rich tables for one results file; presentation only (the numbers come from metrics.py)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from specbench_cli.results import BASELINE


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _speedup(row: dict[str, Any]) -> str:
    return "1.00x" if row["strategy"] == BASELINE else f"{row['speedup']:.2f}x"


def _ci(row: dict[str, Any]) -> str:
    ci = row.get("speedup_ci") or []
    return f"{ci[0]:.2f}-{ci[1]:.2f}" if len(ci) == 2 else "-"


def _divergence(row: dict[str, Any]) -> tuple[str, str]:
    div = row.get("divergence") or {}
    kl, tv = div.get("kl", 0.0), div.get("tv", 0.0)
    kl_text = "inf" if kl in ("inf", float("inf")) else f"{kl:.3f}"
    return kl_text, f"{tv:.3f}"


def _quality(row: dict[str, Any]) -> str:
    """Each metric's mean; for strategies its delta against the baseline, * = CI excludes 0."""
    if row["strategy"] == BASELINE:
        return "\n".join(f"{m} {v:.3g}" for m, v in (row.get("quality") or {}).items()) or "-"
    lines = []
    for metric, d in (row.get("quality_delta") or {}).items():
        star = "*" if d.get("significant") else ""
        lines.append(f"{metric} {d['value']:+.3g} [{d['low']:+.3g}, {d['high']:+.3g}]{star}")
    return "\n".join(lines) or "-"


def results_table(data: dict[str, Any]) -> Table:
    cfg = data["config"]
    length = cfg.get("draft_length", "fixed")
    drafter = cfg["drafter"] + ("" if length == "fixed" else f" ({length} draft length)")
    title = (f"specbench: target {cfg['target']}, drafter {drafter}, k={cfg['k']}, "
             f"T={cfg['temperature']}, {cfg.get('noise_mode', 'race')} noise"
             + ("" if data.get("status") != "interrupted"
                                          else " (interrupted: partial results)"))
    table = Table(title=title, title_justify="left")
    for name in ("suite", "strategy", "n", "tok/s", "speedup", "95% CI", "mean acc. tokens",
                 "accept", "by position %", "KL", "TV", "quality Δ [95% CI]"):
        numeric = name not in ("suite", "strategy", "by position %", "quality Δ [95% CI]")
        table.add_column(name, justify="right" if numeric else "left",
                         no_wrap=name in ("speedup", "95% CI"))
    for row in data["results"]:
        suite = row["suite"] + (f"/{row['category']}" if row.get("category") else "")
        n = str(row["num_prompts"]) + (f" ({row['num_failed']} failed)"
                                       if row["num_failed"] else "")
        per_pos = " ".join(f"{100 * a:.0f}" for a in row.get("per_position_acceptance", []))
        kl, tv = _divergence(row)
        table.add_row(suite, row["strategy"], n, f"{row['tokens_per_second']:.1f}",
                      _speedup(row), _ci(row), f"{row['mean_accepted_tokens']:.2f}",
                      _pct(row["acceptance_rate"]), per_pos or "-", kl, tv, _quality(row))
    table.caption = ("speedup: vs the baseline of this run (95% CI: paired bootstrap over "
                     "prompts). mean acc. tokens: mean accepted tokens = tokens per target forward "
                     "pass, the bonus or correction token included. "
                     "accept: accepted/drafted. KL, TV: per emitted token, exact output law "
                     "vs the target's. quality: baseline mean; strategies: delta vs baseline, "
                     "* = 95% CI excludes 0.")
    return table
