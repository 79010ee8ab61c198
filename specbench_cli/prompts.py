"""From a suite prompt to token ids: chat template, turn seeds.

A prompt's turns are rendered with the target's chat template (earlier answers fed back as
assistant turns, MT-Bench style) unless templates are off, then tokenized. Each turn's seed is a
pure function of the run seed, the suite, the prompt id and the turn, so every contender (the
baseline and each strategy) sees the same random stream for the same prompt (common random
numbers), whatever runs before it.
"""

from __future__ import annotations

import zlib
from typing import Any

Message = dict[str, str]  # {"role": "user" | "assistant", "content": text}


def prompt_seed(seed: int, suite: str, prompt_id: str, turn: int) -> int:
    return zlib.crc32(f"{seed}:{suite}:{prompt_id}:{turn}".encode())


def encode(tokenizer: Any, messages: list[Message], chat_template: bool) -> list[int]:
    """Token ids for a conversation; the target's chat template when it has one and it is on."""
    if chat_template and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer("\n".join(m["content"] for m in messages))["input_ids"]
