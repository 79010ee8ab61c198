"""`specbench compare`: show results files side by side and gate CI on regressions.

This module owns the flags and the three renderings of a `Verdict` (rich table, GitHub
markdown, JSON); the `specbench_cli.compare` package owns the logic and the gate file.
Exit codes: 0 pass, 1 regression (`typer.Exit(EXIT_REGRESSION)`), 2 bad input (`BadInput`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from specbench_cli.console import err, out, warn
from specbench_cli.errors import EXIT_REGRESSION
from specbench_cli.tables import Column, fit, make_table, natural_width, print_table, width_of

if TYPE_CHECKING:
    from specbench_cli.compare import MetricChange, Verdict

COMPARE_EXAMPLES = """
The first path is the baseline, each further path a candidate.
Exit code: 0 pass, 1 a gated metric got worse than its threshold, 2 bad input.

Wall-clock changes whose paired-bootstrap interval over prompts contains 0,
or no larger than the runs' own timing noise (the larger timing_noise of
runs with --rounds > 1), are shown as "within noise" and do not fail a
gate; gate on speedup (a ratio
measured within each run) rather than tokens/s. Accepted tokens, acceptance,
quality and divergence are deterministic under a fixed seed: gate them at 0%.

Examples:

  specbench compare runs/main runs/pr

  specbench compare base/ current/ -t speedup=5% -t mean_accepted_tokens=2%

  specbench compare baseline/ current/ --format markdown > comment.md

  specbench compare baseline/ current/ --config gate.yaml
"""


class OutputFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    json = "json"


OUTPUT_FORMATS = tuple(f.value for f in OutputFormat)


PathsArg = Annotated[
    list[str],
    typer.Argument(
        help="Results files or run folders: the baseline first, then one or more candidates.",
        show_default=False,
        metavar="RESULTS",
    ),
]
ThresholdOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--threshold",
        "-t",
        metavar="METRIC=PCT",
        help="Fail (exit 1) when a candidate is worse than the baseline by more than PCT on "
        "METRIC, e.g. speedup=5%. Repeatable; overrides the same metric in --config.",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Gate file (YAML): thresholds: {METRIC: PCT}, and optionally allow_config_diff "
        "and format. Flags override it.",
        show_default=False,
    ),
]
FormatOpt = Annotated[
    OutputFormat | None,
    typer.Option("--format", help="Output: table (default), markdown or json.", show_default=False),
]
AllowConfigDiffOpt = Annotated[
    bool,
    typer.Option(
        "--allow-config-diff",
        help="Compare runs whose sampling settings (temperature, top-k, top-p, k, "
        "max-new-tokens, seed, target, draft) differ, with a warning.",
    ),
]

# --- rendering -------------------------------------------------------------------------------

HEADERS = ["row", "metric", "baseline", "candidate", "change", "noise (95%)", "verdict"]
STATUS_STYLE = {
    "regression": "bold red",
    "better": "green",
    "worse": "yellow",
    "within noise": "dim",
    "same": "",
    "n/a": "dim",
    "missing": "bold red",
}


def _value(metric: str, value: float | None) -> str:
    """A metric value in 4 significant digits; bytes in MiB, large numbers without exponent."""
    if value is None:
        return "—"
    if metric == "peak_memory_bytes":
        return f"{value / 2**20:,.1f} MiB"
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"


def _change(change: MetricChange) -> str:
    """The change in percent; tiny non-zero changes keep 2 significant digits, never "0.0%"."""
    pct = change.change_pct
    if pct is None:
        return "from 0" if change.baseline == 0 else "—"
    if pct == 0:
        return "0%"
    return f"{pct:+.2g}%" if abs(pct) < 0.05 else f"{pct:+.1f}%"


def _noise(change: MetricChange) -> str:
    """The bootstrap interval; "exact" for deterministic metrics; a dash when not assessed."""
    if change.noise is not None:
        return f"{change.noise.low_pct:+.1f}% .. {change.noise.high_pct:+.1f}%"
    if change.noise_floor_pct is not None:
        return f"±{change.noise_floor_pct:.1f}% floor"
    return "exact" if change.deterministic else "—"


def _verdict_cell(change: MetricChange) -> str:
    gate = "" if change.threshold_pct is None else f" (gate {change.threshold_pct:g}%)"
    return change.status + gate


def table_lines(verdict: Verdict) -> list[tuple[list[str], str]]:
    """(cells, status) per metric of every row; the row label only on its first metric."""
    many = len(verdict.candidates) > 1
    lines = []
    for row in verdict.rows:
        label = f"{row.candidate}: {row.label}" if many else row.label
        for i, change in enumerate(row.changes):
            cells = [
                label if i == 0 else "",
                change.metric,
                _value(change.metric, change.baseline),
                _value(change.metric, change.candidate),
                _change(change),
                _noise(change),
                _verdict_cell(change),
            ]
            lines.append((cells, change.status))
    return lines


def verdict_line(verdict: Verdict) -> str:
    """One line: regression (with what failed), pass against the gates, or comparison only."""
    if verdict.failures:
        failed = len(verdict.failures)
        return f"regression ({failed} gate{'s' if failed > 1 else ''} failed): " + "; ".join(
            verdict.failures
        )
    if verdict.thresholds:
        gates = ", ".join(f"{metric} {pct:g}%" for metric, pct in verdict.thresholds.items())
        return f"pass: no regression beyond the thresholds ({gates})"
    return "no thresholds given: comparison only"


def _short_metric(metric: str) -> str:
    """`accept@N` for `per_position_acceptance.N` (narrow tables; a note names the metric)."""
    family, _, position = metric.partition(".")
    return f"accept@{position}" if family == "per_position_acceptance" else metric


def _columns(lines: list[tuple[list[str], str]], with_row: bool, short: bool) -> list[Column]:
    """The table's columns: labels (row, metric) never cut; the noise interval optional."""
    cells = list(zip(*(line for line, _ in lines), strict=True)) or [()] * len(HEADERS)
    metric = [_short_metric(m) for m in cells[1]] if short else list(cells[1])
    columns = [Column("row", list(cells[0]), label=True), Column("metric", metric, label=True)]
    columns += [Column(header, list(col), right=True, drop=2 if header.startswith("noise") else 0)
                for header, col in zip(HEADERS[2:], cells[2:], strict=True)]  # fmt: skip
    return columns if with_row else columns[1:]


def _layout(verdict: Verdict, width: int | None) -> tuple[list[Column], list[str], bool, bool]:
    """(columns, dropped headers, one table with a row column?, short metric names?): one
    table when it fits, else one block per compared row under a heading; full metric names
    unless only the short ones fit."""
    lines = table_lines(verdict)
    if width is None:
        return _columns(lines, True, False), [], True, False
    layouts = []
    for with_row, short in ((True, False), (False, False), (False, True)):
        shown, dropped = fit(_columns(lines, with_row, short), width)
        layouts.append((width_of(shown) > width, len(dropped), shown, dropped, with_row, short))
    *_, shown, dropped, with_row, short = min(layouts, key=lambda x: x[:2])  # first best
    return shown, dropped, with_row, short


def render_table(verdict: Verdict, console: Console | None = None, wide: bool = False) -> None:
    """Rich tables on stdout coloured by status, fitted to the console (everything with
    `wide`): one table with a row column, or a block per compared row under its heading when
    that does not fit; then notes and the verdict."""
    console = console or out
    columns, dropped, single, short = _layout(verdict, None if wide else console.width)
    styles = [STATUS_STYLE[status] for _, status in table_lines(verdict)]
    console.print(Text(f"{verdict.baseline} (baseline) vs {', '.join(verdict.candidates)}",
                       style="bold"))  # fmt: skip
    if single:
        print_table(console, make_table(columns, styles=styles), wide)
    else:
        widths = [natural_width(c) for c in columns]
        console.print(make_table([Column(c.header, []) for c in columns], widths=widths))
        start = 0
        for row in verdict.rows:
            stop = start + len(row.changes)
            block = [Column(c.header, c.cells[start:stop], c.right) for c in columns]
            if start:
                console.print()
            console.print(Text(row.label if len(verdict.candidates) == 1
                               else f"{row.candidate}: {row.label}", style="bold"))
            console.print(make_table(block, styles=styles[start:stop], widths=widths,
                                     show_header=False))  # fmt: skip
            start = stop
    if short:
        console.print("accept@N = per_position_acceptance.N (the name --threshold takes)",
                      highlight=False)  # fmt: skip
    if dropped:
        console.print(f"Not shown at this width: {', '.join(dropped)} (--wide shows every "
                      "column).", highlight=False)  # fmt: skip
    console.print(Text(verdict_line(verdict), style="bold red" if verdict.failures else "bold"))


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def render_markdown(verdict: Verdict) -> None:
    """A GitHub table for a pull-request comment, the verdict in bold above it."""
    mark = "❌" if verdict.failures else "✅"
    title = f"`{verdict.baseline}` (baseline) vs `{'`, `'.join(verdict.candidates)}`"
    lines = [f"{mark} **specbench compare**: {verdict_line(verdict)}", "", title, ""]
    lines.append(_markdown_row(HEADERS))
    lines.append(_markdown_row(["---"] * len(HEADERS)))
    lines += [_markdown_row(cells) for cells, _ in table_lines(verdict)]
    if verdict.warnings:
        lines += ["", *(f"- warning: {w}" for w in verdict.warnings)]
    out.out("\n".join(lines), highlight=False)


def render_json(verdict: Verdict) -> None:
    """One JSON document on stdout: the whole verdict, for other tools."""
    from specbench_cli.results import json_safe

    document = json_safe({"passed": verdict.passed, **asdict(verdict)})
    out.out(json.dumps(document, indent=2, allow_nan=False), highlight=False)


RENDERERS = {  # the table is rendered with the console's width, see `compare`
    OutputFormat.markdown: render_markdown,
    OutputFormat.json: render_json,
}


# --- the command -----------------------------------------------------------------------------


def compare(
    paths: PathsArg,
    threshold: ThresholdOpt = None,
    config: ConfigOpt = None,
    output_format: FormatOpt = None,
    allow_config_diff: AllowConfigDiffOpt = False,
    wide: Annotated[bool, typer.Option(
        "--wide", help="Table: every column and full names, however wide.")] = False,
) -> None:
    """Compare results files side by side; with --threshold, gate CI on regressions."""
    from specbench_cli.compare import compare_runs  # numpy: keep `specbench --help` instant
    from specbench_cli.compare.gate import GateFile, read_gate_file
    from specbench_cli.compare.metrics import parse_thresholds

    gate = read_gate_file(config, OUTPUT_FORMATS) if config else GateFile({})
    thresholds = {**gate.thresholds, **parse_thresholds(threshold or [])}
    verdict = compare_runs(paths, thresholds, allow_config_diff or gate.allow_config_diff)
    output_format = output_format or OutputFormat(gate.format or "table")
    if output_format is OutputFormat.table:
        render_table(verdict, wide=wide)
    else:
        RENDERERS[output_format](verdict)
    for message in verdict.warnings:
        warn(escape(message))
    if verdict.failures:
        if output_format is not OutputFormat.table:  # stdout went to a file: say why here
            err.print(Text(verdict_line(verdict)), soft_wrap=True)
        raise typer.Exit(EXIT_REGRESSION)


compare.__doc__ = (compare.__doc__ or "") + "\n" + COMPARE_EXAMPLES
