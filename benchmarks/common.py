"""Set-up shared by the model benchmarks: the default model and Spec-Bench-style prompts."""

from __future__ import annotations

from typing import Any

from specbench_cli.contenders import eos_ids
from specbench_cli.models import check_spec, load_model
from specbench_cli.prompts import encode
from specbench_cli.runner import quiet_transformers
from specbench_cli.suites import load_suite

SUITES = ("summarization", "rag", "math", "chat")  # input-grounded and free-form, as Spec-Bench


def default_model_and_prompts(per_suite: int) -> tuple[Any, tuple[int, ...], list[list[int]]]:
    """(loaded default model, its EOS ids, chat-templated token ids of the first turns)."""
    quiet_transformers()
    model = load_model(check_spec("default"))
    texts = [p.turns[0] for s in SUITES for p in load_suite(s, per_suite).prompts]
    ids = [encode(model.tokenizer, [{"role": "user", "content": t}], True) for t in texts]
    return model, eos_ids(model), ids
