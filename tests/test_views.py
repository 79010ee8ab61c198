"""The terminal views: bars, sparklines and the acceptance/model table from a results dict.

Run: .venv/bin/python -m pytest tests/test_views.py -q
"""

from __future__ import annotations

from rich.console import Console

from specbench_cli.views import acceptance_view, bar, spark, sweep_view


def test_bar_and_spark():
    assert bar(0.0) == " " * 8
    assert bar(1.0) == "█" * 8
    assert bar(0.5) == "████    "
    assert bar(1 / 64) == "▏       "  # one eighth of one cell
    assert bar(2.0) == "█" * 8 and bar(-1.0) == " " * 8  # clamped
    assert spark([0.0, 0.5, 1.0]) == "▁▅█"


def _results() -> dict:
    calibrated = {"predicted_speedup": 1.3, "recommended_k": 2,
                  "predicted_speedup_at_recommended_k": 1.45}
    model = {"predicted_speedup": 1.91, "recommended_k": 6,
             "predicted_speedup_at_recommended_k": 2.05, "calibrated": calibrated}
    row = {"strategy": "cactus:delta=0.5", "suite": "default", "category": None,
           "speedup": 1.4, "speedup_ci": [1.2, 1.6], "mean_accepted_tokens": 2.3,
           "per_position_acceptance": [0.9, 0.6, 0.3], "speedup_model": model,
           "grid": {"k": 3, "temperature": 1.0}}
    base = {"strategy": "baseline", "suite": "default", "category": None, "speedup": 1.0}
    return {"config": {"target": "t", "drafter": "ngram"}, "status": "complete",
            "results": [base, row]}


def _render(renderable) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


def test_acceptance_view_shows_bars_and_the_model():
    text = _render(acceptance_view(_results()))
    assert "cactus:delta=0.5 [default]" in text and "baseline" not in text
    assert "███████▎ 90%" in text and "pos 3" in text
    assert "1.40x" in text and "1.91x" in text and "6 (2.05x)" in text and "2 (1.45x)" in text


def test_sweep_view_lists_points():
    text = _render(sweep_view(_results()))
    assert "temperature" in text and "1.20-1.60" in text and "█▅▃" in text
