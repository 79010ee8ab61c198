"""The CI gate never passes on a value it could not check, through the real CLI.

Run: .venv/bin/python -m pytest tests/test_compare_gate.py -q

A gated metric that is null, missing or NaN on one side of a row present in both files fails
(exit 1), and so does a baseline row that vanished from the candidate; a metric that applies to
neither side of a row (the baseline row's acceptance rate) is not gated there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_compare import compare, edit_results, make_run, metric


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return make_run(tmp_path / "base")


def _fails_on_missing(result, *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "pass" not in result.stdout.splitlines()[-1]
    for word in words:
        assert word in result.stdout


@pytest.mark.parametrize("value", [None, "NaN"])
def test_null_or_nan_candidate_value_fails_the_gate(base: Path, tmp_path: Path, value) -> None:
    cand = make_run(tmp_path / "cand")
    if value is None:
        edit_results(cand, 1, speedup=None)
    else:  # json.dumps writes NaN, which Python's JSON reader accepts
        edit_results(cand, 1, speedup=float("nan"))
    _fails_on_missing(compare(base, cand, "-t", "speedup=5%"), "missing", "cannot be checked")


def test_missing_key_and_missing_baseline_value_fail_the_gate(base: Path, tmp_path: Path) -> None:
    cand = make_run(tmp_path / "cand")
    data = json.loads((cand / "results.json").read_text())
    del data["results"][1]["mean_accepted_tokens"]
    (cand / "results.json").write_text(json.dumps(data))
    _fails_on_missing(compare(base, cand, "-t", "mean_accepted_tokens=2%"), "missing")
    edit_results(base, 1, divergence={"tv": 0.01})  # the baseline lost its KL
    result = compare(base, make_run(tmp_path / "cand2"), "-t", "divergence.kl=0%")
    _fails_on_missing(result, "divergence.kl")
    assert metric(compare(base, make_run(tmp_path / "cand3"), "-t", "divergence.kl=0%",
                          "--format", "json"), "sps", "divergence.kl")["status"] == "missing"


def test_vanished_candidate_row_fails_the_gate(base: Path, tmp_path: Path) -> None:
    cand = make_run(tmp_path / "cand")
    data = json.loads((cand / "results.json").read_text())
    data["results"] = data["results"][:1]  # sps crashed before producing a row
    (cand / "results.json").write_text(json.dumps(data))
    _fails_on_missing(compare(base, cand, "-t", "speedup=5%"), "missing from the candidate")
    shown = compare(base, cand)  # without a gate it is only shown, with a warning
    assert shown.returncode == 0 and "not in" in shown.stderr


def test_metric_absent_on_both_sides_of_a_row_is_not_gated(base: Path, tmp_path: Path) -> None:
    # the baseline row has no acceptance rate in either file; sps has one in both
    result = compare(base, make_run(tmp_path / "cand"), "-t", "acceptance_rate=0%")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("pass")


def test_infinite_divergence_is_a_regression_not_bad_input(base: Path, tmp_path: Path) -> None:
    cand = edit_results(make_run(tmp_path / "cand"), 1, divergence={"kl": "inf", "tv": 0.5})
    result = compare(base, cand, "-t", "divergence.kl=10%", "--format", "json")
    assert result.returncode == 1, result.stderr
    assert metric(result, "sps", "divergence.kl")["candidate"] == "inf"
