"""Input checks of `specbench compare`, in-process (many cheap cases): thresholds, gate files,
results rows.

Run: .venv/bin/python -m pytest tests/test_compare_parsing.py -q

The same errors reach the command line as one-line exit-2 errors; test_compare.py checks that
through the real CLI for a few of them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from specbench_cli.commands.compare import OUTPUT_FORMATS
from specbench_cli.compare import load_run
from specbench_cli.compare.gate import read_gate_file
from specbench_cli.compare.metrics import higher_is_better, parse_threshold, parse_thresholds
from specbench_cli.errors import BadInput


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("per_position_acceptance.0=5%", "unknown metric"),
        ("quality=5%", "unknown metric"),
        ("speedup5%", "expected METRIC=PCT"),
        ("=5%", "expected METRIC=PCT"),
        ("speedup=-5%", "% sign"),
        ("speedup=abc%", "% sign"),
        ("speedup=0.05", "% sign"),
    ],
)
def test_threshold_syntax(text: str, message: str) -> None:
    with pytest.raises(BadInput, match=re.escape(message)):
        parse_threshold(text)


def test_thresholds_parse_to_percent() -> None:
    assert parse_threshold(" divergence.kl = 10% ") == ("divergence.kl", 10.0)
    assert parse_threshold("per_position_acceptance.2=0.5%") == ("per_position_acceptance.2", 0.5)
    assert parse_threshold("quality.rouge_l=0%") == ("quality.rouge_l", 0.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("thresholds: {speedup: 5}\n", "% sign"),
        ("thresholds: [speedup]\n", "'thresholds' must map"),
        ("thresholds: {speedup: 5%\n", "gate.yaml:2: invalid YAML"),
        ("allow_config_diff: yes please\n", "true or false"),
        ("format: [html]\n", "'format' must be one of"),
        ("- speedup\n", "expected a mapping"),
    ],
)
def test_gate_file_checks(tmp_path: Path, text: str, message: str) -> None:
    gate = tmp_path / "gate.yaml"
    gate.write_text(text)
    with pytest.raises(BadInput, match=re.escape(message)):
        read_gate_file(gate, OUTPUT_FORMATS)


def test_metric_directions() -> None:
    higher = ["speedup", "tokens_per_second", "mean_accepted_tokens", "acceptance_rate",
              "per_position_acceptance.3", "quality.exact_match"]
    lower = ["divergence.kl", "divergence.tv", "time_to_first_token_s", "wall_s",
             "peak_memory_bytes"]
    assert all(higher_is_better(name) is True for name in higher)
    assert all(higher_is_better(name) is False for name in lower)
    assert higher_is_better("speed") is None and higher_is_better("quality.") is None


def test_repeated_thresholds_are_collected_once_each() -> None:
    assert parse_thresholds(["speedup=5%", "acceptance_rate=0%"]) == {
        "speedup": 5.0, "acceptance_rate": 0.0}
    with pytest.raises(BadInput, match="given twice"):
        parse_thresholds(["speedup=5%", "speedup=1%"])


def test_gate_file_thresholds_and_options(tmp_path: Path) -> None:
    gate = tmp_path / "gate.yaml"
    gate.write_text("thresholds:\n  speedup: 5%\nallow_config_diff: true\nformat: markdown\n")
    loaded = read_gate_file(gate, OUTPUT_FORMATS)
    assert loaded.thresholds == {"speedup": 5.0} and loaded.allow_config_diff
    assert loaded.format == "markdown"
    gate.write_text("")
    assert read_gate_file(gate, OUTPUT_FORMATS).thresholds == {}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"strategy": "sps", "suite": "default", "drafter": 3}], "needs text labels"),
        ([{"suite": "default"}], "needs text labels"),
        ([{"strategy": "sps", "suite": "default"}] * 2, "two results rows for sps / default"),
    ],
)
def test_results_rows_need_unique_text_labels(tmp_path: Path, rows: list, message: str) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema_version": 1, "results": rows}))
    with pytest.raises(BadInput, match=re.escape(message)):
        load_run(str(path))
