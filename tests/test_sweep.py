"""`specbench sweep`, `plot` and `export` through the real CLI on tiny random-weight models: rows
carry their grid values, every point has its own baseline, resume after a kill or Ctrl-C gives
the same tokens as an uninterrupted sweep, plot writes valid PNGs with CSVs beside them, export
loads without custom code.

Run: .venv/bin/python -m pytest tests/test_sweep.py -q
"""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import SPECBENCH, run_cli
from test_cli import assert_bad_input

from specbench_cli.resume import latest_records, record_key

PIL = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def scored_suite(tmp_path_factory) -> Path:
    """Two prompts that repeat themselves (so prompt lookup drafts), scored by ROUGE through
    the `auto` scorer's per-prompt `extra.scorer`."""
    path = tmp_path_factory.mktemp("suite") / "tiny.jsonl"
    lines = [{"id": f"p{i}", "prompt": f"w{i} w{i + 1} w{i + 2} w{i} w{i + 1}",
              "references": [f"w{i + 2} w{i} w{i + 1} w{i + 2}"], "extra": {"scorer": "rouge"}}
             for i in range(2)]  # fmt: skip
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def sweep_args(target: Path, draft: Path, suite: Path, out: Path) -> list[str]:
    return ["sweep", "--target", str(target), "--draft", str(draft), "--suite", str(suite),
            "--k", "1,2", "--strategy", "sps", "--strategy", "cactus:delta=0.5,1",
            "--max-new-tokens", "8", "--output", str(out)]  # fmt: skip


@pytest.fixture(scope="module")
def swept(tmp_path_factory, tiny_target, tiny_draft, scored_suite) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "run"
    result = run_cli(*sweep_args(tiny_target, tiny_draft, scored_suite, out))
    assert result.returncode == 0, result.stderr
    assert "predicted" in result.stdout and "cactus.delta" in result.stdout
    return out


def load(folder: Path) -> tuple[dict, list[dict]]:
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    return json.loads((folder / "results.json").read_text()), records


def test_rows_carry_their_grid_values(swept):
    data, records = load(swept)
    rows = data["results"]
    assert len(rows) == 2 * 4  # 2 points x (baseline + sps + cactus x 2)
    assert data["sweep"]["axes"] == {"k": [1, 2]}
    assert data["sweep"]["strategy_params"] == ["cactus.delta"]
    for row in rows:
        grid = row["grid"]
        assert grid["k"] in (1, 2) and grid["temperature"] == 1.0
        if row["strategy_name"] == "cactus":
            assert grid["cactus.delta"] == row["params"]["delta"]
        else:
            assert "cactus.delta" not in grid
        if row["strategy"] != "baseline":
            assert len(row["per_position_acceptance"]) == grid["k"]
            assert len(row["accepted_length_histogram"]) == grid["k"] + 1
            assert row["speedup_model"]["recommended_k"] >= 1
            assert row["baseline_tokens_per_second"] > 0
            assert "rougeL" in row["quality_delta"]
    # every point ran its own baseline on every prompt, and every record names its point
    assert len(records) == 2 * 4 * 2
    baselines = {(r["grid"]["k"], r["prompt_id"]) for r in records if r["strategy"] == "baseline"}
    assert baselines == {(k, p) for k in (1, 2) for p in ("p0", "p1")}
    assert (swept / "sweep.yaml").is_file()


def _tokens(records: list[dict]) -> dict:
    return {record_key(r): r["output_token_ids"] for r in latest_records(records)}


def test_resume_after_a_kill_gives_the_same_sweep(swept, tmp_path):
    full, full_records = load(swept)
    cut = tmp_path / "cut"
    shutil.copytree(swept, cut)
    (cut / "results.json").unlink()
    lines = (cut / "records.jsonl").read_text().splitlines(keepends=True)
    # a kill after 5 records, the last one cut mid-line: p0 at k=1 done, p1 at k=1 half-done
    (cut / "records.jsonl").write_text("".join(lines[:5]) + lines[5][:40])
    result = run_cli("sweep", "--resume", str(cut))
    assert result.returncode == 0, result.stderr
    data, records = load(cut)
    assert data["status"] == "complete"
    # p1 at k=1 reruns under all four contenders, k=2 runs whole; nothing done is redone
    assert len(records) == 5 + 4 + 8
    assert _tokens(records) == _tokens(full_records)  # same seeds, same tokens
    keys = ("strategy", "grid", "num_prompts", "mean_accepted_tokens", "acceptance_rate",
            "per_position_acceptance", "accepted_length_histogram", "quality")
    assert [{k: r[k] for k in keys} for r in data["results"]] == [
        {k: r[k] for k in keys} for r in full["results"]]
    again = run_cli("sweep", "--resume", str(cut))  # complete: nothing left to run
    assert again.returncode == 0, again.stderr
    assert len(load(cut)[1]) == len(records)


def test_ctrl_c_then_resume(tmp_path, tiny_target, tiny_draft, scored_suite, swept):
    out = tmp_path / "run"
    proc = subprocess.Popen([*SPECBENCH, *sweep_args(tiny_target, tiny_draft, scored_suite, out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    records = out / "records.jsonl"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if records.exists() and len(records.read_text().splitlines()) >= 3:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=600)
    data, done = load(out)
    if proc.returncode == 0:  # finished before the signal landed: nothing to resume
        assert data["status"] == "complete"
        return
    assert proc.returncode == 130, stderr
    assert data["status"] == "interrupted" and f"sweep --resume {out}" in stderr
    assert len(done) < 16
    result = run_cli("sweep", "--resume", str(out))
    assert result.returncode == 0, result.stderr
    data, records = load(out)
    assert data["status"] == "complete"
    assert _tokens(records) == _tokens(load(swept)[1])


def test_resume_bad_input(tmp_path, swept, tiny_target, tiny_draft, scored_suite):
    again = run_cli(*sweep_args(tiny_target, tiny_draft, scored_suite, swept))
    assert_bad_input(again, "already holds a finished run", f"sweep --resume {swept}")
    assert_bad_input(run_cli("sweep", "--resume", str(tmp_path / "missing")), "--resume")
    assert_bad_input(run_cli("sweep", "--resume", str(tmp_path)), "not a sweep folder")
    assert_bad_input(run_cli("sweep", "--resume", str(swept), "--k", "3"), "--resume takes")
    assert_bad_input(run_cli("sweep", "--k", "2,x"), "--k: 'x' is not an integer")
    assert_bad_input(run_cli("sweep", "--strategy", "cactus:0.5"), "not key=value")


def _png(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with PIL.open(path) as image:
        image.verify()
    with PIL.open(path) as image:
        assert image.format == "PNG"
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 50  # drawn on, not a blank canvas
        return image.size


def _csv(path: Path) -> tuple[list[str], list[dict]]:
    with path.open() as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


FIGURES = {
    "speedup_vs_k": ["series", "kind", "k", "speedup", "speedup_ci_low", "speedup_ci_high",
                     "mean_accepted_tokens"],
    "acceptance_by_position": ["series", "k", "position", "conditional", "unconditional",
                               "joint"],
    "accepted_length_histogram": ["series", "k", "accepted", "steps", "share"],
    "quality_vs_speedup": ["metric", "strategy", "point", "speedup", "quality_delta",
                           "delta_ci_low", "delta_ci_high", "pareto"],
    "divergence_vs_speedup": ["strategy", "point", "speedup", "kl_per_token", "pareto"],
    "speedup_vs_cactus_delta": ["series", "cactus.delta", "speedup", "speedup_ci_low",
                                "speedup_ci_high", "predicted_speedup", "k"],
}  # fmt: skip


def test_plot_writes_pngs_and_csvs(swept, tmp_path):
    out = tmp_path / "figures"
    result = run_cli("plot", str(swept), "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(FIGURES)
    for name, header in FIGURES.items():
        width, height = _png(out / f"{name}.png")
        assert width >= 700 and height >= 400
        columns, rows = _csv(out / f"{name}.csv")
        assert columns == header and rows
    data, _ = load(swept)
    strategies = [r for r in data["results"] if r["strategy"] != "baseline"]
    _, speed = _csv(out / "speedup_vs_k.csv")
    measured = [r for r in speed if r["kind"] == "measured"]
    assert len(measured) == len(strategies) == 6  # 3 series (sps, 2 cactus) x 2 values of k
    assert sorted(float(r["speedup"]) for r in measured) == pytest.approx(
        sorted(r["speedup"] for r in strategies), rel=1e-5)
    _, positions = _csv(out / "acceptance_by_position.csv")
    assert {r["k"] for r in positions} == {"2"} and len(positions) == 3 * 2
    _, trade = _csv(out / "divergence_vs_speedup.csv")
    assert any(r["pareto"] == "True" for r in trade)


def test_plot_of_a_single_run_draws_the_model_curve(tmp_path, tiny_target, tiny_draft,
                                                    scored_suite, swept):  # fmt: skip
    out = tmp_path / "run"
    result = run_cli("run", "--target", str(tiny_target), "--draft", str(tiny_draft),
                     "--suite", str(scored_suite), "--strategy", "sps", "--k", "3",
                     "--max-new-tokens", "8", "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "pos 1" in result.stdout and "best k" in result.stdout  # the terminal view
    plotted = run_cli("plot", str(out))
    assert plotted.returncode == 0, plotted.stderr
    _png(out / "plots" / "speedup_vs_k.png")
    _, rows = _csv(out / "plots" / "speedup_vs_k.csv")
    model = [int(r["k"]) for r in rows if r["kind"] == "model"]
    assert model == list(range(1, 13))  # k = 1..max(12, 2k) around the measured k = 3
    # with the sweep (k = 1, 2, same settings otherwise) sps is one curve over k = 1, 2, 3
    both = run_cli("plot", str(swept), str(out), "--output", str(tmp_path / "both"))
    assert both.returncode == 0, both.stderr
    _, rows = _csv(tmp_path / "both" / "speedup_vs_k.csv")
    sps = [int(r["k"]) for r in rows if r["series"] == "sps" and r["kind"] == "measured"]
    assert sps == [1, 2, 3]
    assert_bad_input(run_cli("plot", str(tmp_path / "missing")), "no results file")


def test_export(swept, tmp_path):
    result = run_cli("export", str(swept), "--output", str(tmp_path / "rows.csv"))
    assert result.returncode == 0, result.stderr
    columns, rows = _csv(tmp_path / "rows.csv")
    for column in ("strategy", "grid.k", "grid.cactus.delta", "speedup", "speedup_ci_low",
                   "per_position_acceptance.1", "per_position_acceptance_conditional.2",
                   "accepted_length_histogram.0", "speedup_model.recommended_k",
                   "quality_delta.rougeL.value"):  # fmt: skip
        assert column in columns
    assert "speedup_model" not in columns and len(rows) == 8
    lines = run_cli("export", str(swept), "--format", "jsonl", "--table", "records",
                    "--output", "-")  # fmt: skip
    assert lines.returncode == 0, lines.stderr
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    assert len(records) == 16 and isinstance(records[0]["output_token_ids"], list)
    assert records[0]["grid.k"] == 1
    parquet = run_cli("export", str(swept), "--format", "parquet")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        assert_bad_input(parquet, "pyarrow")
    else:
        assert parquet.returncode == 0, parquet.stderr
        assert pq.read_table(swept / "results.parquet").num_rows == 8
    assert_bad_input(run_cli("export", str(swept), "--format", "xlsx"), "--format")
