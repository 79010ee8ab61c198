"""Short terminal views beside the results table: acceptance by draft position as bars, and the
speedup model's prediction next to the measurement; for sweeps, one line per point and
strategy. Presentation only (rich, no other dependency); the numbers come from metrics.py.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from specbench_cli.results import BASELINE
from specbench_cli.tables import times

_EIGHTHS = " ▏▎▍▌▋▊▉█"
_SPARK = "▁▂▃▄▅▆▇█"


def bar(fraction: float, width: int = 8) -> str:
    """A horizontal bar of `width` cells filled to `fraction` (0..1), in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, rest = divmod(eighths, 8)
    return ("█" * full + (_EIGHTHS[rest] if rest else "")).ljust(width)


def spark(values: list[float]) -> str:
    """One block character per value in 0..1 (a curve in one line)."""
    return "".join(_SPARK[min(7, int(max(0.0, min(1.0, v)) * 8))] for v in values)


def _model(row: dict[str, Any]) -> tuple[str, str, str]:
    """(predicted speedup at the run's k, recommended k, recommended k once the verify pass is
    charged its measured cost), as table cells."""
    model = row.get("speedup_model") or {}
    if not model:
        return "-", "-", "-"
    calibrated = model.get("calibrated") or {}
    return (f"{model['predicted_speedup']:.2f}x", _best(model),
            _best(calibrated) if calibrated else "-")  # fmt: skip


def _best(prediction: dict[str, Any]) -> str:
    return (f"{prediction['recommended_k']} "
            f"({prediction['predicted_speedup_at_recommended_k']:.2f}x)")


def _label(row: dict[str, Any]) -> str:
    return row["strategy"] + (f" [{row['suite']}/{row['category']}]" if row.get("category")
                              else f" [{row['suite']}]")  # fmt: skip


def acceptance_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows the acceptance view shows: strategies whose per-position acceptance is known
    (serving engines may not report it), whole suites only."""
    return [r for r in data["results"] if r["strategy"] != BASELINE and not r.get("category")
            and r.get("per_position_acceptance")]  # fmt: skip


def acceptance_view(data: dict[str, Any]) -> Table:
    """Per strategy: P(the first i drafts accepted | i drafted) as a bar per position, and
    measured against predicted speedup with the k the model recommends."""
    rows = acceptance_rows(data)
    k = max((len(r.get("per_position_acceptance") or []) for r in rows), default=0)
    table = Table(title="acceptance by draft position, and the speedup model",
                  title_justify="left", box=None, padding=(0, 1))  # fmt: skip
    table.add_column("strategy")
    for i in range(1, k + 1):
        table.add_column(f"pos {i}", no_wrap=True)
    for name in ("speedup", "predicted", "best k", "best k, verify cost measured"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        joint = row.get("per_position_acceptance") or []
        cells = [Text(bar(v) + f"{100 * v:3.0f}%", style="cyan") for v in joint]
        cells += [Text("")] * (k - len(cells))
        table.add_row(Text(_label(row)), *cells, times(row.get("speedup")), *_model(row))
    table.caption = ("pos i: share of steps that drafted i tokens whose first i were all "
                     "accepted. predicted: the standard speedup model at the run's k from this "
                     "acceptance profile and the measured draft/target cost ratio c; best k: "
                     "the k it recommends; verify cost measured: the same model charging the "
                     "verify pass what it cost here (docs/metrics.md).")
    return table


def sweep_view(data: dict[str, Any]) -> Table:
    """One line per grid point and strategy: measured and predicted speedup, acceptance."""
    rows = [r for r in data["results"] if r["strategy"] != BASELINE and not r.get("category")]
    axes = list(dict.fromkeys(key for r in rows for key in (r.get("grid") or {})))
    status = " (interrupted: partial results)" if data.get("status") == "interrupted" else ""
    table = Table(title=f"specbench sweep: target {data['config'].get('target')}, drafter "
                        f"{data['config'].get('drafter')}{status}", title_justify="left")
    for name in (*axes, "strategy", "suite", "speedup", "95% CI", "predicted", "best k",
                 "best k, verify cost", "mean acc. tokens", "by position"):  # fmt: skip
        table.add_column(name, justify="left" if name in ("strategy", "suite", "by position")
                         else "right", no_wrap=True)  # fmt: skip
    for row in rows:
        grid = row.get("grid") or {}
        ci = row.get("speedup_ci") or []
        table.add_row(*(str(grid.get(a, "")) for a in axes), row["strategy"], row["suite"],
                      times(row.get("speedup")), f"{ci[0]:.2f}-{ci[1]:.2f}" if len(ci) == 2
                      else "-", *_model(row), f"{row['mean_accepted_tokens']:.2f}",
                      spark(row.get("per_position_acceptance") or []))  # fmt: skip
    table.caption = ("speedup: vs the baseline at the same point (95% CI over prompts, as in a "
                     "run; none below 5 prompts). predicted / best k: the standard speedup model "
                     "from each row's acceptance profile and cost ratio; verify cost: the same "
                     "model charging "
                     "the verify pass its measured cost. by position: P(first i accepted), one "
                     "block per position.")
    return table
