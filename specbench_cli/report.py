"""The results table of one run; presentation only (the numbers come from metrics.py).

Designed for 80 columns first: strategy labels with parameters become short labels (`cactus[1]`)
with a legend below the table when the full ones do not fit, and optional columns are dropped
by priority (`tables.fit`); speedup, tok/step, accept and the quality change always stay.
`--wide` shows every column with full labels.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from specbench_cli.results import BASELINE
from specbench_cli.tables import Column, fit, make_table, print_table, times, width_of

POSITIONS_SHOWN = 8  # per-position acceptance: the first positions, then an ellipsis


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x: Any, fmt: str) -> str:
    """A number in `fmt`, or `-` for what a run could not measure (None)."""
    return "-" if x is None else format(x, fmt)


def _speedup(row: dict[str, Any]) -> str:
    if row["strategy"] == BASELINE:
        return "1.00x"
    return times(row.get("speedup"))


def _speedup_ci(row: dict[str, Any]) -> str:
    if row["strategy"] == BASELINE or row.get("speedup") is None:
        return "-"
    ci = row.get("speedup_ci") or []
    return f"{ci[0]:.2f}-{ci[1]:.2f}" if len(ci) == 2 else f"n={row.get('num_paired', '?')}<5"


def _latency(row: dict[str, Any]) -> str:
    """Per-request time per output token in ms: median and 90th percentile over requests."""
    if row.get("time_per_token_median_s") is None:
        return "-"
    return f"{1e3 * row['time_per_token_median_s']:.1f} {1e3 * row['time_per_token_p90_s']:.1f}"


def _kl(row: dict[str, Any]) -> str:
    kl = (row.get("divergence") or {}).get("kl", 0.0)
    return "inf" if kl in ("inf", float("inf")) else _num(kl, ".3f")


def _positions(row: dict[str, Any]) -> str:
    values = [f"{100 * a:.0f}" for a in row.get("per_position_acceptance") or []]
    if len(values) > POSITIONS_SHOWN:
        return " ".join(values[:POSITIONS_SHOWN]) + f" … ({len(values)})"
    return " ".join(values) or "-"


def _quality(row: dict[str, Any]) -> tuple[str, str]:
    """(values, intervals), one line per metric: the baseline's mean score, or a strategy's
    change from the baseline with * when its interval excludes 0."""
    if row["strategy"] == BASELINE:
        lines = [f"{m} {v:#.3g}" for m, v in (row.get("quality") or {}).items()]
        return "\n".join(lines) or "-", "\n".join("" for _ in lines) or "-"
    values, intervals = [], []
    for metric, d in (row.get("quality_delta") or {}).items():
        values.append(f"{metric} {d['value']:+#.3g}{'*' if d.get('significant') else ''}")
        low, high = d.get("low"), d.get("high")
        intervals.append(f"n={d.get('n', '?')}<5" if low is None
                         else f"[{low:+#.3g}, {high:+#.3g}]")  # fmt: skip
    return "\n".join(values) or "-", "\n".join(intervals) or "-"


def short_labels(labels: list[str]) -> dict[str, str]:
    """`name[i]` for every label with parameters (numbered in order), the rest unchanged."""
    short, n = {}, 0
    for label in dict.fromkeys(labels):
        if ":" in label:
            n += 1
            short[label] = f"{label.partition(':')[0]}[{n}]"
        else:
            short[label] = label
    return short


def _drafts(row: dict[str, Any]) -> str:
    """What the contender drafted per step: a chain of k, or a tree's shape and mean size."""
    kind = row.get("kind") or ""
    if kind == "tree":
        return (f"tree {row['branches']}x{row['depth']}, "
                f"{row.get('mean_tree_nodes', 0.0):.1f}/{row['nodes']} nodes")  # fmt: skip
    return f"chain k={row['depth']}" if kind == "chain" else "-"


def _columns(rows: list[dict[str, Any]], names: dict[str, str], suites: bool) -> list[Column]:
    def col(header: str, cells: list[str], **kw: Any) -> Column:
        return Column(header, cells, **kw)

    quality = [_quality(r) for r in rows]
    columns = [
        col("strategy", [names[r["strategy"]] for r in rows], label=True),
        col("drafts", [_drafts(r) for r in rows], drop=1),
        col("n", [str(r["num_prompts"]) + (f" ({r['num_failed']} failed)" if r["num_failed"]
                                            else "") for r in rows], right=True, drop=5),
        col("tok/s", [f"{r['tokens_per_second']:.1f}" for r in rows], right=True, drop=4),
        col("ms/token p50 p90", [_latency(r) for r in rows], right=True, drop=9),
        col("speedup", [_speedup(r) for r in rows], right=True),
        col("95% CI", [_speedup_ci(r) for r in rows], right=True, drop=3),
        col("tok/step", [_num(r["mean_accepted_tokens"], ".2f") for r in rows], right=True),
        col("accept", [_pct(r["acceptance_rate"]) for r in rows], right=True),
        col("by position %", [_positions(r) for r in rows], drop=8),
        col("KL", [_kl(r) for r in rows], right=True, drop=6),
        col("TV", [_num((r.get("divergence") or {}).get("tv", 0.0), ".3f") for r in rows],
            right=True, drop=7),
        col("quality (Δ)", [q[0] for q in quality]),
        col("quality 95% CI", [q[1] for q in quality], drop=2),
    ]  # fmt: skip
    if suites:
        labels = [r["suite"] + (f"/{r['category']}" if r.get("category") else "") for r in rows]
        columns.insert(0, col("suite", labels, label=True))
    if not any(r.get("kind") == "tree" for r in rows):  # chains: k is in the title
        columns = [c for c in columns if c.header != "drafts"]
    if all(r.get("batch_size", 1) == 1 for r in rows):  # per-request latency is 1 / tok/s
        columns = [c for c in columns if not c.header.startswith("ms/token")]
    if not any(r.get("quality") or r.get("quality_delta") for r in rows):
        columns = [c for c in columns if not c.header.startswith("quality")]
    return columns


def _layout(rows: list[dict[str, Any]], width: int | None,
            suites: bool) -> tuple[list[Column], list[str], dict[str, str]]:  # fmt: skip
    """(columns, dropped headers, label legend): full labels when they fit as well as short
    ones, else short labels; `width` None shows everything."""
    full = {r["strategy"]: r["strategy"] for r in rows}
    if width is None:
        return _columns(rows, full, suites), [], {}
    short = short_labels([r["strategy"] for r in rows])
    shown, dropped = fit(_columns(rows, full, suites), width)
    if not dropped and width_of(shown) <= width or short == full:
        return shown, dropped, {}
    shown_short, dropped_short = fit(_columns(rows, short, suites), width)
    if len(dropped_short) < len(dropped) or width_of(shown) > width:
        legend = {s: label for label, s in short.items() if s != label}
        return shown_short, dropped_short, legend
    return shown, dropped, {}


def _title(data: dict[str, Any], suites: list[str]) -> str:
    cfg = data["config"]
    if cfg.get("server"):
        server = data.get("environment", {}).get("server") or {}
        title = (f"specbench: {cfg['engine']} server {cfg['server']}, model "
                 f"{server.get('model')}, T={cfg['temperature']}, concurrency "
                 f"{cfg.get('concurrency', 1)}")
    else:
        length = cfg.get("draft_length", "fixed")
        drafter = cfg["drafter"] + ("" if length == "fixed" else f" ({length} draft length)")
        title = (f"specbench: target {cfg['target']}, drafter {drafter}, k={cfg['k']}, "
                 f"T={cfg['temperature']}, {cfg.get('noise_mode', 'race')} noise")
        if cfg.get("batch_size", 1) > 1:
            title += f", batch size {cfg['batch_size']}"
    if len(suites) == 1:
        title += f", suite {suites[0]}"
    if data.get("status") == "interrupted":
        title += f" (interrupted by {data.get('interrupted_by') or 'a signal'}: partial results)"
    return title


def _notes(rows: list[dict[str, Any]], headers: set[str], legend: dict[str, str],
           dropped: list[str], data: dict[str, Any]) -> list[str]:  # fmt: skip
    notes = [f"{s} = {label}" for s, label in legend.items()]
    meaning = {
        "speedup": "speedup: tokens/s over the baseline's, same run, same prompts",
        "tok/step": "tok/step: tokens per target forward pass (mean_accepted_tokens: accepted "
                    "drafts + the correction or bonus token)",
        "ms/token p50 p90": "ms/token: per request, its latency over its tokens (median and 90th "
                            "percentile over requests); tok/s at batch N: each batch's tokens "
                            "over its wall time",
        "accept": "accept: accepted / drafted tokens",
        "by position %": "by position: acceptance of each drafted position (trees: of each "
                         "depth; accept = accepted path / tree depth)",
        "KL": "KL, TV: divergence of the emitted law from the target's, per token",
        "quality (Δ)": "quality (Δ): the baseline's mean score; other rows: the change from the "
                       "baseline, * where its 95% CI excludes 0",
    }  # fmt: skip
    notes.append("; ".join(text for header, text in meaning.items() if header in headers) + ".")
    paired = [r.get("num_paired", r["num_prompts"]) for r in rows if r["strategy"] != BASELINE]
    method = (data.get("intervals") or {})
    if paired and method:
        n = f"{min(paired)}" if min(paired) == max(paired) else f"{min(paired)}-{max(paired)}"
        notes.append(f"95% CI: {method['method']}, over n = {n} paired prompts per row; rows "
                     f"with fewer than {method['min_prompts']} get none.")
    if (noise := _timing_noise_note(data)) is not None:
        notes.append(noise)
    if dropped:
        notes.append(f"Not shown at this width: {', '.join(dropped)} (--wide shows every "
                     "column).")
    return notes


def _timing_noise_note(data: dict[str, Any]) -> str | None:
    """The run's own timing noise (the spread of each prompt's repeated rounds), or a note
    that there is none; nothing for server runs and files written before rounds existed."""
    cfg = data.get("config") or {}
    if cfg.get("server") or "timing_noise" not in data:
        return None
    noise = data["timing_noise"]
    if not noise:
        return ("timing noise: unknown, each prompt was timed once (--rounds 1); compare "
                "judges noise by its bootstrap interval only.")  # fmt: skip
    each = ", ".join(f"{label} {_pct(value)}" for label, value in noise["by_strategy"].items())
    return (f"timing noise: {_pct(noise['overall'])} (median over prompts of the spread, max - "
            f"min over median, of each prompt's {noise['rounds']} rounds; {each}); times are "
            "medians over rounds, and compare calls smaller changes within noise.")  # fmt: skip


def results_report(data: dict[str, Any], width: int | None) -> tuple[Any, list[str]]:
    """(table, notes below it) of a results file for a console `width` columns wide (None: every
    column and full labels)."""
    rows = data["results"]
    suites = list(dict.fromkeys(r["suite"] + (f"/{r['category']}" if r.get("category") else "")
                                for r in rows))  # fmt: skip
    columns, dropped, legend = _layout(rows, width, len(suites) > 1)
    table = make_table(columns, _title(data, suites))
    return table, _notes(rows, {c.header for c in columns}, legend, dropped, data)


def print_results(data: dict[str, Any], console: Console | None = None,
                  wide: bool = False) -> None:  # fmt: skip
    """The results table and its notes, fitted to the console (every column with `wide`)."""
    from specbench_cli.console import out

    console = console or out
    table, notes = results_report(data, None if wide else console.width)
    print_table(console, table, wide)
    for note in notes:
        console.print(note, highlight=False, markup=False)
    if any(row.get("latency") for row in data["results"]):
        console.print(latency_table(data))


def latency_table(data: dict[str, Any]) -> Any:
    """TTFT, TPOT and end-to-end latency percentiles (seconds) of the rows that carry them."""
    rows = [r for r in data["results"] if r.get("latency")]
    columns = [
        Column(
            "suite",
            [r["suite"] + (f"/{r['category']}" if r.get("category") else "") for r in rows],
            label=True,
        ),
        Column("strategy", [r["strategy"] for r in rows], label=True),
        Column("n", [str(r["num_prompts"]) for r in rows], right=True),
    ]
    for metric, name, fmt in (("ttft_s", "TTFT", ".3f"), ("tpot_s", "TPOT", ".4f"),
                              ("e2e_s", "e2e", ".3f")):  # fmt: skip
        for p in ("p50", "p90", "p99"):
            cells = [_num((r["latency"].get(metric) or {}).get(p), fmt) for r in rows]
            columns.append(Column(f"{name} {p}" if p == "p50" else p, cells, right=True))
    return make_table(columns, "latency (seconds; percentiles over prompts)")
