"""`specbench compare` through the real CLI, on synthetic run folders built to the results schema.

Run: .venv/bin/python -m pytest tests/test_compare.py tests/test_compare_parsing.py -q

Each run folder holds a records.jsonl (20 prompts x {baseline, sps}) and a results.json whose
rows are the aggregates of those records, computed the way results.py defines them, so the
per-prompt noise estimate and the rows agree. Syntax edge cases: test_compare_parsing.py.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

SPECBENCH = str(Path(sys.executable).with_name("specbench"))  # the installed console script
PROMPTS = 20
NEW_TOKENS = 64
CONFIG = {
    "target": "default", "draft": None, "drafter": "ngram", "strategies": ["sps"],
    "suites": ["default"], "limit": None, "k": 4, "temperature": 0.0, "top_k": 0, "top_p": 1.0,
    "max_new_tokens": NEW_TOKENS, "seed": 0, "dtype": "float32",
}
ENVIRONMENT = {"device": "cpu", "cpu": "Test CPU", "gpu": None, "cpu_threads": 2}


# --- synthetic runs ------------------------------------------------------------------------


def _record(strategy: str, drafter: str, i: int, wall_s: float) -> dict:
    """A PromptRecord (the schema's fields are optional; these are the ones compare reads)."""
    return {
        "suite": "default", "prompt_id": f"p{i}", "category": "default", "strategy": strategy,
        "drafter": drafter, "status": "ok", "error": None, "new_tokens": NEW_TOKENS,
        "wall_s": wall_s, "ttft_s": 0.05, "peak_memory_bytes": 2**30,
    }


def _row(records: list[dict], strategy: str, drafter: str, extra: dict) -> dict:
    """A results row aggregated from records: sums of tokens over sums of time, median TTFT."""
    mine = [r for r in records if r["strategy"] == strategy]
    base = [r for r in records if r["strategy"] == "baseline"]
    tps = sum(r["new_tokens"] for r in mine) / sum(r["wall_s"] for r in mine)
    base_tps = sum(r["new_tokens"] for r in base) / sum(r["wall_s"] for r in base)
    return {
        "strategy": strategy, "strategy_name": strategy, "params": {}, "drafter": drafter,
        "suite": "default", "category": None, "num_prompts": len(mine), "num_failed": 0,
        "new_tokens": sum(r["new_tokens"] for r in mine),
        "wall_s": sum(r["wall_s"] for r in mine), "tokens_per_second": tps,
        "baseline_tokens_per_second": base_tps, "speedup": tps / base_tps,
        "time_to_first_token_s": statistics.median(r["ttft_s"] for r in mine),
        "peak_memory_bytes": 2**30, "divergence": {"kl": 0.0, "tv": 0.0}, **extra,
    }


def make_run(folder: Path, *, speed: float = 1.0, spread: float = 0.0, kl: float = 0.02,
             accepted: float = 2.5, records: bool = True) -> Path:
    """A run folder where `sps` is 2 x `speed` times faster than the baseline.

    `spread` makes sps prompt times alternate +-spread around that; prompts come in pairs with
    the same baseline time, so the jitter cancels and the aggregate speedup stays 2 x speed.
    """
    recs = []
    for i in range(PROMPTS):
        base_wall = 1.0 + 0.1 * (i // 2)
        jitter = spread if i % 2 else -spread
        recs.append(_record("baseline", "none", i, base_wall))
        recs.append(_record("sps", "ngram", i, base_wall / (2 * speed) * (1 + jitter)))
    sps = {"mean_accepted_tokens": accepted, "acceptance_rate": 0.5,
           "per_position_acceptance": [0.7, 0.5, 0.4, 0.3], "quality": {"exact_match": 0.5},
           "divergence": {"kl": kl, "tv": kl / 2}}
    base = {"mean_accepted_tokens": 1.0, "acceptance_rate": None, "per_position_acceptance": []}
    results = {
        "schema_version": 1, "specbench_version": "0.1.0", "created": "2026-11-22T00:00:00+00:00",
        "status": "complete", "environment": ENVIRONMENT, "config": CONFIG,
        "results": [_row(recs, "baseline", "none", base), _row(recs, "sps", "ngram", sps)],
    }
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(results, indent=2))
    if records:
        (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return folder


def edit_results(folder: Path, part: str | int, **changes: object) -> Path:
    """Update one part of a run's results.json: a section ("config") or a row (its index)."""
    path = folder / "results.json"
    data = json.loads(path.read_text())
    (data["results"][part] if isinstance(part, int) else data[part]).update(changes)
    path.write_text(json.dumps(data))
    return folder


def compare(*args: object) -> subprocess.CompletedProcess:
    """`specbench compare ARGS` in a subprocess, wide enough that table cells never wrap."""
    return subprocess.run(
        [SPECBENCH, "compare", *map(str, args)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


def assert_bad_input(result: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 2, one `Error:` line on stderr naming `words`, no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    for word in words:
        assert word in lines[0]


def metric(result: subprocess.CompletedProcess, strategy: str, name: str) -> dict:
    """One metric entry of a --format json document."""
    document = json.loads(result.stdout)
    row = next(r for r in document["rows"] if r["strategy"] == strategy)
    return next(m for m in row["changes"] if m["metric"] == name)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return make_run(tmp_path / "base")


# --- gates ---------------------------------------------------------------------------------


def test_identical_runs_pass(base: Path, tmp_path: Path) -> None:
    cand = make_run(tmp_path / "cand")
    result = compare(base, cand, "--threshold", "speedup=5%", "-t", "divergence.kl=0%")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("pass: no regression")


def test_speedup_drop_of_10_percent_fails_5_and_passes_15(base: Path, tmp_path: Path) -> None:
    cand = make_run(tmp_path / "cand", speed=0.9)
    failed = compare(base, cand, "--threshold", "speedup=5%")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "regression" in failed.stdout and "-10.0%" in failed.stdout
    assert "Traceback" not in failed.stderr
    passed = compare(base, cand, "--threshold", "speedup=15%")
    assert passed.returncode == 0, passed.stdout + passed.stderr


def test_speedup_gate_works_on_results_files_without_records(base: Path, tmp_path: Path) -> None:
    cand = make_run(tmp_path / "cand", speed=0.9, records=False)
    result = compare(base / "results.json", cand / "results.json", "-t", "speedup=5%")
    assert result.returncode == 1
    assert "without a noise estimate" in result.stderr


def test_higher_divergence_fails(base: Path, tmp_path: Path) -> None:
    cand = make_run(tmp_path / "cand", kl=0.03)
    result = compare(base, cand, "--threshold", "divergence.kl=10%", "--format", "json")
    assert result.returncode == 1
    kl = metric(result, "sps", "divergence.kl")
    assert kl["failed"] and kl["status"] == "regression" and not kl["higher_is_better"]
    assert kl["change_pct"] == pytest.approx(50.0)


def test_zero_baseline_divergence_fails_on_any_increase(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", kl=0.0)
    same = make_run(tmp_path / "same", kl=0.0)
    worse = make_run(tmp_path / "worse", kl=1e-6)
    assert compare(base, same, "-t", "divergence.kl=10%").returncode == 0
    assert compare(base, worse, "-t", "divergence.kl=10%").returncode == 1


def test_deterministic_gates_demand_exact_equality(base: Path, tmp_path: Path) -> None:
    gates = ["-t", "mean_accepted_tokens=0%", "-t", "acceptance_rate=0%"]
    assert compare(base, make_run(tmp_path / "same"), *gates).returncode == 0
    lower = make_run(tmp_path / "lower", accepted=2.4999)
    result = compare(base, lower, *gates, "--format", "json")
    assert result.returncode == 1
    accepted = metric(result, "sps", "mean_accepted_tokens")
    assert accepted["deterministic"] and accepted["noise"] is None


def test_no_threshold_only_shows(base: Path, tmp_path: Path) -> None:
    result = compare(base, make_run(tmp_path / "cand", speed=0.97, spread=0.3, kl=0.5))
    assert result.returncode == 0
    assert "comparison only" in result.stdout
    assert "within noise" in result.stdout and "exact" in result.stdout


# --- noise ---------------------------------------------------------------------------------


def test_large_per_prompt_spread_makes_a_3_percent_drop_noise(base: Path, tmp_path: Path) -> None:
    cand = make_run(tmp_path / "cand", speed=0.97, spread=0.3)
    result = compare(base, cand, "-t", "speedup=2%", "--format", "json")
    assert result.returncode == 0, result.stderr
    speedup = metric(result, "sps", "speedup")
    assert speedup["change_pct"] == pytest.approx(-3.0)
    assert speedup["within_noise"] and speedup["status"] == "within noise"
    assert speedup["beyond_threshold"] and not speedup["failed"]
    assert speedup["noise"]["low_pct"] < 0 < speedup["noise"]["high_pct"]
    assert "within noise" in result.stderr


def test_tiny_per_prompt_spread_makes_a_3_percent_drop_significant(
    base: Path, tmp_path: Path
) -> None:
    cand = make_run(tmp_path / "cand", speed=0.97, spread=0.001)
    result = compare(base, cand, "-t", "speedup=2%", "--format", "json")
    assert result.returncode == 1
    speedup = metric(result, "sps", "speedup")
    assert speedup["within_noise"] is False and speedup["status"] == "regression"
    assert -3.2 < speedup["noise"]["low_pct"] <= speedup["noise"]["high_pct"] < -2.8


# --- output formats ------------------------------------------------------------------------


def markdown_table(text: str) -> list[list[str]]:
    """The one GitHub table in `text`: contiguous | lines after a blank line; cells per row."""
    lines = text.splitlines()
    at = [i for i, line in enumerate(lines) if line.startswith("|")]
    assert at and at == list(range(at[0], at[-1] + 1)), "table lines must be contiguous"
    assert at[0] > 0 and lines[at[0] - 1] == "", "a table needs a blank line before it"
    rows = [re.split(r"(?<!\\)\|", lines[i].strip())[1:-1] for i in at]
    assert all(lines[i].strip().endswith("|") for i in at)
    assert len({len(row) for row in rows}) == 1, "every row needs the same number of cells"
    assert all(re.fullmatch(r"\s*:?-{3,}:?\s*", cell) for cell in rows[1]), "separator row"
    return rows


def test_markdown_is_a_valid_github_table_with_a_verdict(base: Path, tmp_path: Path) -> None:
    cand = make_run(tmp_path / "cand", speed=0.9)
    result = compare(base, cand, "-t", "speedup=5%", "--format", "markdown")
    assert result.returncode == 1
    rows = markdown_table(result.stdout)
    assert [cell.strip() for cell in rows[0]][:2] == ["row", "metric"]
    assert any("speedup" in row[1] and "regression" in row[-1] for row in rows[2:])
    verdicts = [line for line in result.stdout.splitlines() if "**specbench compare**" in line]
    assert len(verdicts) == 1 and "regression" in verdicts[0]
    assert result.stderr.startswith("regression (1 gate failed)")  # stdout is the comment


def test_markdown_escapes_pipes_in_labels(tmp_path: Path) -> None:
    base = edit_results(make_run(tmp_path / "base"), 1, strategy="cactus:delta=0.5|x")
    cand = edit_results(make_run(tmp_path / "cand"), 1, strategy="cactus:delta=0.5|x")
    result = compare(base, cand, "--format", "markdown")
    assert result.returncode == 0
    assert any("cactus:delta=0.5\\|x" in row[0] for row in markdown_table(result.stdout))


def test_json_is_one_document(base: Path, tmp_path: Path) -> None:
    result = compare(base, make_run(tmp_path / "cand"), "-t", "speedup=5%", "--format", "json")
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert document["passed"] is True and document["thresholds"] == {"speedup": 5.0}
    assert {row["strategy"] for row in document["rows"]} == {"baseline", "sps"}


def test_several_candidates_are_each_compared_with_the_baseline(
    base: Path, tmp_path: Path
) -> None:
    same, slow = make_run(tmp_path / "same"), make_run(tmp_path / "slow", speed=0.9)
    result = compare(base, same, slow, "-t", "speedup=5%", "--format", "json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["candidates"] == [str(same), str(slow)]
    assert len(document["failures"]) == 1 and str(slow) in document["failures"][0]


# --- gate file -----------------------------------------------------------------------------


def test_gate_file_sets_thresholds_and_format(base: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate.yaml"
    gate.write_text("thresholds:\n  speedup: 5%\n  mean_accepted_tokens: 2%\nformat: json\n")
    cand = make_run(tmp_path / "cand", speed=0.9)
    result = compare(base, cand, "--config", gate)
    assert result.returncode == 1
    assert json.loads(result.stdout)["thresholds"] == {"speedup": 5.0, "mean_accepted_tokens": 2.0}
    assert compare(base, cand, "--config", gate, "-t", "speedup=15%").returncode == 0


def test_gate_file_allows_config_diff(base: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate.yaml"
    gate.write_text("thresholds: {speedup: 5%}\nallow_config_diff: true\n")
    cand = edit_results(make_run(tmp_path / "cand"), "config", seed=1)
    assert compare(base, cand, "--config", gate).returncode == 0


def test_bad_gate_file_is_bad_input(base: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate.yaml"
    gate.write_text("thresholds: {speedup: 5%}\ngates: 1\n")
    result = compare(base, make_run(tmp_path / "cand"), "--config", gate)
    assert_bad_input(result, str(gate), "unknown key 'gates'")


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", ["not valid JSON"]),
        (None, ["not valid JSON"]),  # truncated: the first half of a real file
        ('{"schema_version": 99, "results": []}', ["schema_version 99"]),
        ('{"schema_version": 1, "results": [{"speedup": 1.0}]}', ["strategy"]),
    ],
)
def test_unreadable_results_are_bad_input(
    base: Path, tmp_path: Path, content: str | None, words: list
) -> None:
    cand = make_run(tmp_path / "cand")
    text = (cand / "results.json").read_text()
    (cand / "results.json").write_text(content if content is not None else text[: len(text) // 2])
    assert_bad_input(compare(base, cand, "-t", "speedup=5%"), *words)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("speedup", "fast", ["speedup is not a number"]),
        ("quality", [0.5], ["quality is not an object"]),
    ],
)
def test_malformed_rows_are_bad_input(
    base: Path, tmp_path: Path, field: str, value: object, words: list
) -> None:
    cand = edit_results(make_run(tmp_path / "cand"), 1, **{field: value})
    assert_bad_input(compare(base, cand), *words)


def test_record_line_that_is_not_an_object_is_bad_input(base: Path, tmp_path: Path) -> None:
    cand = make_run(tmp_path / "cand", speed=0.9)
    (cand / "records.jsonl").write_text('5\n{"status": "ok"}\n')
    assert_bad_input(compare(base, cand, "-t", "speedup=5%"), "must be a JSON object")


def test_missing_file_and_single_file_are_bad_input(base: Path, tmp_path: Path) -> None:
    assert_bad_input(compare(base, tmp_path / "nowhere"), "no results file")
    assert_bad_input(compare(base), "at least one candidate")


def test_corrupt_record_line_is_bad_input(base: Path, tmp_path: Path) -> None:
    cand = make_run(tmp_path / "cand")
    with (cand / "records.jsonl").open("r+") as f:
        lines = f.readlines()
        f.seek(0)
        f.writelines(["{oops\n", *lines])
    assert_bad_input(compare(base, cand), "corrupt record line")


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--threshold", "speeed=5%"], ["unknown metric", "did you mean 'speedup'"]),
        (["--threshold", "speedup=5"], ["% sign"]),
        (["-t", "quality.bleu=1%"], ["no compared row reports it"]),
    ],
)
def test_bad_thresholds_are_bad_input(base: Path, tmp_path: Path, flags: list, words: list) -> None:
    assert_bad_input(compare(base, make_run(tmp_path / "cand"), *flags), *words)


def test_config_mismatch_is_bad_input_unless_allowed(base: Path, tmp_path: Path) -> None:
    cand = edit_results(make_run(tmp_path / "cand"), "config", temperature=0.7, seed=3)
    assert_bad_input(compare(base, cand), "temperature 0.0 vs 0.7", "seed", "--allow-config-diff")
    allowed = compare(base, cand, "--allow-config-diff", "-t", "speedup=5%")
    assert allowed.returncode == 0
    assert "different settings" in allowed.stderr


def test_noise_mode_mismatch_is_bad_input(base: Path, tmp_path: Path) -> None:
    """Files written before noise_mode was recorded count as race, the only mode they had."""
    race = edit_results(make_run(tmp_path / "race"), "config", noise_mode="race")
    assert compare(base, race, "-t", "speedup=5%").returncode == 0
    icdf = edit_results(make_run(tmp_path / "icdf"), "config", noise_mode="icdf")
    assert_bad_input(compare(base, icdf), "noise_mode 'race' vs 'icdf'")


def test_rows_in_one_file_only_are_warnings(base: Path, tmp_path: Path) -> None:
    cand = edit_results(make_run(tmp_path / "cand"), 1, strategy="tas")
    result = compare(base, cand)
    assert result.returncode == 0, result.stderr
    assert "sps / ngram / default is in" in result.stderr
    assert "tas / ngram / default is in" in result.stderr


def test_no_rows_in_common_is_bad_input(base: Path, tmp_path: Path) -> None:
    cand = edit_results(make_run(tmp_path / "cand"), 0, suite="math")
    edit_results(cand, 1, suite="math")
    assert_bad_input(compare(base, cand), "no strategy/drafter/suite rows in common")


def test_other_hardware_is_a_warning(base: Path, tmp_path: Path) -> None:
    cand = edit_results(make_run(tmp_path / "cand"), "environment", cpu="Other CPU")
    result = compare(base, cand, "-t", "speedup=5%")
    assert result.returncode == 0
    assert "different hardware" in result.stderr
