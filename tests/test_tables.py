"""Tables that fit the terminal: the run, compare and kernels check tables rendered to fixed-width
consoles (80, 120 and 200 columns). No line is wider than the console, every label a user needs
to tell rows apart is shown whole (or as a short label that a legend line spells out), and the
columns that must survive are there.

Run: .venv/bin/python -m pytest tests/test_tables.py -q
"""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from specbench_cli.bootstrap import method_info
from specbench_cli.commands.compare import render_table
from specbench_cli.commands.kernels import print_agreement
from specbench_cli.compare import compare_runs
from specbench_cli.kernel_checks import Agreement
from specbench_cli.metrics import aggregate
from specbench_cli.report import print_results
from specbench_cli.results import make_results, write_json_atomic

WIDTHS = [80, 120, 200]
STRATEGIES = ["sps", "cactus:delta=0.5", "cactus:delta=1.0", "tas:alpha=0.3,bonus=sample,eps=0.09",
              "topk:k=5"]  # fmt: skip
CATEGORIES = {"summarization": {"rougeL": 0.3}, "translation": {"chrf": 40.0, "bleu": 12.0},
              "writing": {}}  # fmt: skip


def _records() -> list[dict]:
    """Per-prompt records of a Spec-Bench style run: 3 categories x 6 prompts x 6 contenders."""
    records = []
    for c, (category, scores) in enumerate(CATEGORIES.items()):
        for i in range(6):
            for s, strategy in enumerate(["baseline", *STRATEGIES]):
                drafted = [0] * 20 if strategy == "baseline" else [4] * 20
                accepted = [0] * 20 if strategy == "baseline" else [(i + s) % 5] * 20
                records.append({
                    "suite": "spec_bench", "prompt_id": f"{category}-{i}", "category": category,
                    "strategy": strategy, "drafter": "none" if strategy == "baseline" else "ngram",
                    "status": "ok", "new_tokens": 64, "wall_s": 1.0 + 0.1 * i - 0.05 * s,
                    "ttft_s": 0.05, "draft_s": 0.01, "target_forward_passes": 21,
                    "accepted_lengths": accepted, "drafted_lengths": drafted,
                    "kl_sum": 0.1 * s, "tv_sum": 0.05 * s, "peak_memory_bytes": 2**29,
                    "scores": {m: v + 0.01 * ((i * s + c) % 3) for m, v in scores.items()},
                })  # fmt: skip
    return records


@pytest.fixture(scope="module")
def results() -> dict:
    info = {label: {"name": label.partition(":")[0], "params": {}} for label in STRATEGIES}
    rows = aggregate(_records(), info, 4)
    config = {"target": "default", "drafter": "ngram", "k": 4, "temperature": 0.7,
              "noise_mode": "race"}  # fmt: skip
    return make_results(config, {}, rows, method_info())


def render(draw, width: int, fits: bool = True) -> list[str]:
    """The plain text `draw` prints on a console `width` columns wide."""
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))
    draw(console)
    lines = console.export_text().splitlines()
    assert not fits or all(len(line) <= width for line in lines), "\n".join(lines)
    return lines


def legend(lines: list[str]) -> dict[str, str]:
    """`short = full` lines below a table."""
    return dict(re.fullmatch(r"(\S+) = (\S+)", line.strip()).groups() for line in lines
                if re.fullmatch(r"\S+\[\d+\] = \S+", line.strip()))  # fmt: skip


@pytest.mark.parametrize("width", WIDTHS)
def test_run_table_fits_and_keeps_every_label(results, width):
    lines = render(lambda c: print_results(results, c), width)
    names = {full: short for short, full in legend(lines).items()}
    header = next(line for line in lines if "strategy" in line)
    for must in ("speedup", "tok/step", "accept", "quality (Δ)"):
        assert must in header
    for row in results["results"]:
        suite = row["suite"] + (f"/{row['category']}" if row["category"] else "")
        shown = names.get(row["strategy"], row["strategy"])
        assert any(re.match(rf"{re.escape(suite)}\s+{re.escape(shown)}\s", line)
                   for line in lines), (suite, shown)  # fmt: skip
    if width == 200:
        assert not names  # room enough for the full labels


def test_run_table_wide_shows_every_column(results):
    lines = render(lambda c: print_results(results, c, wide=True), 80, fits=False)
    assert max(map(len, lines)) > 80
    header = next(line for line in lines if "strategy" in line)
    for column in ("n", "tok/s", "95% CI", "by position %", "KL", "TV", "quality 95% CI"):
        assert column in header
    assert not any(line.startswith("Not shown") for line in lines)


def test_run_table_notes_state_the_interval_method_and_n(results):
    text = "\n".join(render(lambda c: print_results(results, c), 200))
    assert "Student t" in text and "n = 6-18 paired prompts" in text


@pytest.fixture(scope="module")
def verdict(results, tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    for name in ("base", "cand"):
        write_json_atomic(folder / name / "results.json", results)
    return compare_runs([str(folder / "base"), str(folder / "cand")], {"speedup": 5.0})


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_table_fits_and_keeps_every_label(verdict, width):
    lines = render(lambda c: render_table(verdict, c), width)
    text = "\n".join(lines)
    for row in verdict.rows:
        assert row.label in text
        for change in row.changes:
            family, _, position = change.metric.partition(".")
            alias = f"accept@{position}" if family == "per_position_acceptance" else None
            assert re.search(rf"^{re.escape(change.metric)}\s|\s{re.escape(change.metric)}\s",
                             text, re.M) or (alias and alias in text), change.metric
    assert lines[-1].startswith("pass")
    if width == 200:
        assert any(line.startswith("row") for line in lines)  # one table with a row column


@pytest.mark.parametrize("width", WIDTHS)
def test_kernels_check_table_keeps_strategy_labels(width):
    specs = ["cactus:delta=0.5", "cactus:delta=0", "interp:alpha=0.3", "tas:bonus=argmax",
             "topk:k=50"]  # fmt: skip
    results = [("cpu", spec, mode, Agreement(1206, 1206, 1206, 0, 0), False)
               for spec in specs for mode in ("race", "icdf")]  # fmt: skip
    lines = render(lambda c: print_agreement(results, c), width)
    for spec in specs:
        for mode in ("race", "icdf"):
            assert any(re.match(rf"{re.escape(spec)}\s+{mode}\s", line) for line in lines)
    header = next(line for line in lines if "strategy" in line)
    assert "token agree" in header and "failed" in header
