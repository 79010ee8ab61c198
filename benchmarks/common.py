"""Set-up shared by the model benchmarks: the default model and Spec-Bench-style prompts."""

from __future__ import annotations

from typing import Any

from specbench_cli.contenders import eos_ids
from specbench_cli.models import check_spec, load_model
from specbench_cli.prompts import encode
from specbench_cli.runner import quiet_transformers
from specbench_cli.suites import load_suite

SUITES = ("summarization", "rag", "math", "chat")  # input-grounded and free-form, as Spec-Bench


def load_default_model() -> tuple[Any, tuple[int, ...]]:
    """(loaded default model, its EOS ids)."""
    quiet_transformers()
    model = load_model(check_spec("default"))
    return model, eos_ids(model)


def suite_prompts(model: Any, suites: tuple[str, ...],
                  per_suite: int) -> dict[str, list[list[int]]]:  # fmt: skip
    """Chat-templated token ids of the first turns of each suite's first `per_suite` prompts."""
    return {s: [encode(model.tokenizer, [{"role": "user", "content": p.turns[0]}], True)
                for p in load_suite(s, per_suite).prompts] for s in suites}


def default_model_and_prompts(per_suite: int) -> tuple[Any, tuple[int, ...], list[list[int]]]:
    """(loaded default model, its EOS ids, chat-templated token ids of the first turns)."""
    model, eos = load_default_model()
    ids = [i for s in suite_prompts(model, SUITES, per_suite).values() for i in s]
    return model, eos, ids
