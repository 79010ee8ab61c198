"""From a suite prompt to token ids: chat template, turn seeds.

A prompt's turns are rendered with the target's chat template (earlier answers fed back as
assistant turns, MT-Bench style) unless templates are off, then tokenized. Each turn's seed is a
pure function of the run seed, the suite, the prompt id and the turn, so every contender (the
baseline and each strategy) sees the same random stream for the same prompt (common random
numbers), whatever runs before it.

Message text is tokenized as text. Tokenizing a rendered template as a whole would turn a
special-token string written inside a prompt (`<|im_end|>`) into the real control token, so a
prompt could close its own turn and open a fake system turn. When a message contains such a
string, the template is rendered with a placeholder per message, its own text is tokenized with
special tokens (its markers stay control tokens) and each message's text with special tokens
split into ordinary characters. Messages without such strings take the plain path, so their ids
are exactly the tokenizer's.
"""

from __future__ import annotations

import zlib
from typing import Any

Message = dict[str, str]  # {"role": "user" | "assistant", "content": text}
_PLACEHOLDER = "SPECBENCHMESSAGE{}END"  # no template marker, stable under trim and escaping


def prompt_seed(seed: int, suite: str, prompt_id: str, turn: int) -> int:
    return zlib.crc32(f"{seed}:{suite}:{prompt_id}:{turn}".encode())


def encode(tokenizer: Any, messages: list[Message], chat_template: bool) -> list[int]:
    """Token ids for a conversation; the target's chat template when it has one and it is on.
    Special-token strings inside messages stay text; only the template's markers are special."""
    if not (chat_template and getattr(tokenizer, "chat_template", None)):
        text = "\n".join(m["content"] for m in messages)
        return tokenizer(text, split_special_tokens=True)["input_ids"]
    text = _render(tokenizer, messages)
    if not any(s in m["content"] for m in messages for s in special_strings(tokenizer)):
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    ids: list[int] = []
    for piece, is_message in _pieces(tokenizer, messages, text):
        ids += tokenizer(piece, add_special_tokens=False,
                         split_special_tokens=is_message)["input_ids"]  # fmt: skip
    return ids


def special_strings(tokenizer: Any) -> set[str]:
    """The strings the tokenizer turns into special (control) tokens."""
    decoder = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    found = {token.content for token in decoder.values() if getattr(token, "special", False)}
    return found | set(getattr(tokenizer, "all_special_tokens", []))


def _render(tokenizer: Any, messages: list[Message]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _pieces(tokenizer: Any, messages: list[Message], text: str) -> list[tuple[str, bool]]:
    """The rendered conversation as (template text, False) and (message text, True) pieces.

    The template is rendered with placeholders and the messages put back in their places; that
    must reproduce `text` exactly (with each message trimmed, for templates that trim), else
    the template rewrites messages and no safe split exists: ValueError (a failed prompt)."""
    marked = [{**m, "content": _PLACEHOLDER.format(i)} for i, m in enumerate(messages)]
    skeleton = _render(tokenizer, marked)
    for transform in (lambda s: s, str.strip):
        pieces, rest = [], skeleton
        for i, message in enumerate(messages):
            before, found, rest = rest.partition(_PLACEHOLDER.format(i))
            if not found:
                break
            pieces += [(before, False), (transform(message["content"]), True)]
        pieces.append((rest, False))
        if "".join(piece for piece, _ in pieces) == text:
            return [(piece, is_message) for piece, is_message in pieces if piece]
    raise ValueError("the chat template rewrites message text, so special-token strings in "
                     "this prompt cannot be kept as text")  # fmt: skip
