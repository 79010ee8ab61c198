"""One streamed chat completion: time to first token, end-to-end latency, the server's usage.

The request streams (`stream_options.include_usage`) so the first content token can be timed;
the token count is the final `usage.completion_tokens`, never a count of streamed chunks (one
chunk may carry several tokens, or none). Top-level fields other than `choices` and `usage`
(llama.cpp's `timings`, SGLang's `sglext`, ...) are kept, the last value of each winning, for
the engine client to read its counts from.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from specbench_cli.serving.protocol import Reply, ServerError

DONE = "[DONE]"


async def chat(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> Reply:
    """POST `body` to `url`/v1/chat/completions with streaming on; raise ServerError on errors."""
    body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    ttft: float | None = None
    text: list[str] = []
    usage: dict[str, Any] | None = None
    extras: dict[str, Any] = {}
    meta: list[dict[str, Any]] = []
    finish: str | None = None
    async with http.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            raise ServerError(error_text(response.status_code, await response.aread()))
        async for line in response.aiter_lines():
            chunk = _event(line)
            if chunk is None:
                continue
            if chunk is DONE:
                break
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    ttft = time.perf_counter() - start if ttft is None else ttft
                    text.append(piece)
                meta.extend(m for m in [choice.get("meta_info")] if isinstance(m, dict))
                finish = choice.get("finish_reason") or finish
            usage = chunk.get("usage") or usage
            extras.update({k: v for k, v in chunk.items()
                           if k not in ("choices", "usage") and v is not None})  # fmt: skip
    e2e = time.perf_counter() - start
    tokens = (usage or {}).get("completion_tokens")
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
        raise ServerError("the response carries no usage.completion_tokens")
    prompt = (usage or {}).get("prompt_tokens")
    prompt = prompt if isinstance(prompt, int) and not isinstance(prompt, bool) else None
    return Reply("".join(text), tokens, e2e, ttft, extras, meta, prompt, finish)


def _event(line: str) -> Any:
    """The JSON payload of one server-sent-events line, DONE at the end, None for other lines."""
    if not line.startswith("data:"):
        return None
    payload = line[len("data:"):].strip()
    if payload == DONE:
        return DONE
    try:
        chunk = json.loads(payload)
    except json.JSONDecodeError:
        raise ServerError(f"a streamed chunk is not JSON: {payload[:120]!r}") from None
    if not isinstance(chunk, dict):
        raise ServerError(f"a streamed chunk is not a JSON object: {payload[:120]!r}")
    if chunk.get("error"):
        raise ServerError(f"error in stream: {_message(chunk['error'])}")
    return chunk


def error_text(status: int, content: bytes) -> str:
    """`HTTP 400: <the server's message>` from an error response body."""
    try:
        data = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = content.decode(errors="replace").strip()
    message = _message(data.get("error", data) if isinstance(data, dict) else data)
    return f"HTTP {status}" + (f": {message}" if message else "")


def _message(error: Any) -> str:
    if isinstance(error, dict):
        error = error.get("message") or error.get("detail") or json.dumps(error)
    return " ".join(str(error).split())[:300]
