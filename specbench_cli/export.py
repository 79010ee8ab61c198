"""`specbench export`: results rows (or per-prompt records) as one flat table, CSV, JSON lines
or Parquet, so they load in pandas without custom code (`pd.read_csv(path)`).

Flattening: nested objects become dotted columns (`quality.rougeL`, `grid.k`,
`quality_delta.rougeL.low`, `speedup_model.recommended_k`); lists of numbers become one column
per entry, 1-based for positions (`per_position_acceptance.1`), 0-based where the index is a
count (`accepted_length_histogram.0` = steps that accepted 0 drafts) and `_low`/`_high` for
intervals (`speedup_ci_low`). Other lists (token ids, texts, per-step lengths) stay one
JSON-encoded cell. Every row gets the same columns, in first-seen order; missing cells are
empty.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from specbench_cli.errors import BadInput
from specbench_cli.results import read_records, read_results

FORMATS = ("csv", "jsonl", "parquet")
TABLES = ("results", "records")
PER_POSITION = "per_position_acceptance"  # and its _conditional, _unconditional forms
PER_INDEX = ("accepted_length_histogram", "predicted_speedup_by_k")
ZERO_BASED = ("accepted_length_histogram",)  # list index is a count, not a position
INTERVALS = ("speedup_ci",)


def flatten(value: Any, prefix: str = "", encode_lists: bool = True) -> dict[str, Any]:
    """One flat mapping of column -> value (rules in the module docstring); other lists stay
    lists when `encode_lists` is false (JSON lines)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key), encode_lists))
        return out
    leaf = prefix.rsplit(".", 1)[-1]
    if isinstance(value, list) and leaf in INTERVALS:
        low, high = value if len(value) == 2 else (None, None)
        return {f"{prefix}_low": low, f"{prefix}_high": high}
    if isinstance(value, list) and (leaf in PER_INDEX or leaf.startswith(PER_POSITION)):
        start = 0 if leaf in ZERO_BASED else 1
        return {f"{prefix}.{i}": v for i, v in enumerate(value, start)}
    if isinstance(value, list) and encode_lists:
        return {prefix: json.dumps(value)}
    return {prefix: value}


def table(run_dir: Path, which: str = "results",
          encode_lists: bool = True) -> list[dict[str, Any]]:  # fmt: skip
    """Flat rows of a run folder's results (one per row) or records (one per prompt)."""
    if which == "results":
        items = read_results(run_dir)["results"]
    else:
        items = read_records(Path(run_dir))
        if not items:
            raise BadInput(f"{run_dir}: no records.jsonl with records")
    return [flatten(item, encode_lists=encode_lists) for item in items]


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every column in first-seen order, without a field that is empty in some rows and an
    object in others (the baseline's null `speedup_model` beside `speedup_model.*`)."""
    names = list(dict.fromkeys(key for row in rows for key in row))
    parents = {name[:i] for name in names for i, char in enumerate(name) if char == "."}
    return [n for n in names if n not in parents]


def to_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    names = columns(rows)
    writer = csv.DictWriter(buffer, fieldnames=names, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({n: "" if row.get(n) is None else row[n] for n in names} for row in rows)
    return buffer.getvalue()


def to_jsonl(rows: list[dict[str, Any]]) -> str:
    names = columns(rows)
    return "".join(json.dumps({n: row.get(n) for n in names}) + "\n" for row in rows)


def write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise BadInput("--format parquet needs pyarrow, which is not installed "
                       "(pip install pyarrow), or use --format csv or jsonl") from None
    names = columns(rows)
    pq.write_table(pa.table({n: [row.get(n) for row in rows] for n in names}), path)


def export(run_dir: Path, fmt: str, which: str, output: Path | None) -> Path | None:
    """Write the table to `output` (default `RUN_DIR/<which>.<fmt>`); `-` writes CSV or JSON
    lines to stdout and returns None."""
    if fmt not in FORMATS:
        raise BadInput(f"--format must be one of {', '.join(FORMATS)} (got {fmt})")
    if which not in TABLES:
        raise BadInput(f"--table must be one of {', '.join(TABLES)} (got {which})")
    rows = table(run_dir, which, encode_lists=fmt != "jsonl")
    if str(output) == "-":
        if fmt == "parquet":
            raise BadInput("--format parquet cannot go to stdout; give --output FILE")
        print(to_csv(rows) if fmt == "csv" else to_jsonl(rows), end="")
        return None
    path = output or Path(run_dir) / f"{which}.{fmt}"
    if fmt == "parquet":
        write_parquet(rows, path)
    else:
        path.write_text(to_csv(rows) if fmt == "csv" else to_jsonl(rows))
    return path
