"""One client per serving engine, behind `EngineClient` (serving/protocol.py).

A new engine is one module with a class that follows the protocol, plus an entry here. Entries
are lazy "module:Class" strings, like every registry in specbench.
"""

from __future__ import annotations

from typing import Any

import httpx

from specbench_cli.registry import Registry

ENGINE_CLIENTS = Registry("engine", {
    "llamacpp": "specbench_cli.serving.engines.llamacpp:LlamaCppClient",
    "sglang": "specbench_cli.serving.engines.sglang:SGLangClient",
    "vllm": "specbench_cli.serving.engines.vllm:VLLMClient",
})  # fmt: skip


def engine_client(name: str) -> Any:
    """A fresh client for the engine named `name` (ValueError with a hint if unknown)."""
    return ENGINE_CLIENTS.load(name)()


async def get_json(http: httpx.AsyncClient, url: str) -> Any:
    """The JSON body of GET `url`, or None when the endpoint is missing, fails or is not JSON:
    what a server does not report stays unreported."""
    try:
        response = await http.get(url)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None
