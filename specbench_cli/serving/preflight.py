"""Check the servers before a run starts: reachable, the engine `--engine` names, a model
served, chat completions that answer. Every problem is one `BadInput` line (exit 2).

The check request is a short chat completion with the run's first prompt; it doubles as the
untimed warm-up. A baseline server must be the same model without speculation: a different
model id, or speculation reported on, is bad input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from specbench_cli.errors import BadInput
from specbench_cli.serving.chat import chat, error_text
from specbench_cli.serving.engines import engine_client
from specbench_cli.serving.protocol import ServerError, ServerInfo

CHECK_TIMEOUT_S = 30.0  # connecting, listing models, describing
WARMUP_TOKENS = 8


@dataclass
class Server:
    """A checked server: its flag, its description and the engine client that reads it."""

    flag: str  # "--server" | "--baseline-server"
    info: ServerInfo
    client: Any  # EngineClient


async def check_server(http: httpx.AsyncClient, flag: str, url: str, engine: str,
                       warmup: list[dict[str, Any]]) -> Server:  # fmt: skip
    """Describe the server at `url` and send it the warm-up requests; BadInput on any problem."""
    client = engine_client(engine)
    model = await _served_model(http, flag, url, client)
    info = await client.describe(http, url, model)
    for body in warmup:
        fields = client.request_fields(info, 0, 1.0)
        try:
            await chat(http, url, {**fields, **body, "model": info.model})
        except ServerError as exc:
            raise BadInput(f"{flag} {url}: chat completions failed: {exc}") from None
        except httpx.HTTPError as exc:
            raise BadInput(f"{flag} {url}: chat completions failed: {_reason(exc)}") from None
    # describe again: some servers report their speculative settings once a request ran
    return Server(flag, await client.describe(http, url, model), client)


async def _served_model(http: httpx.AsyncClient, flag: str, url: str, client: Any
                        ) -> dict[str, Any]:  # fmt: skip
    """The first model of /v1/models, after checking the engine that signs it."""
    try:
        response = await http.get(f"{url}/v1/models", timeout=CHECK_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise BadInput(f"{flag} {url}: cannot reach the server ({_reason(exc)})") from None
    if response.status_code != 200:
        raise BadInput(f"{flag} {url}: GET /v1/models answered "
                       f"{error_text(response.status_code, response.content)}")  # fmt: skip
    try:
        models = response.json().get("data")
    except (ValueError, AttributeError):
        models = None
    if not isinstance(models, list) or not models or not isinstance(models[0], dict) \
            or not isinstance(models[0].get("id"), str):
        raise BadInput(f"{flag} {url}: /v1/models lists no model "
                       "(not an OpenAI-compatible server?)")
    owners = {m.get("owned_by") for m in models if isinstance(m, dict)}
    if client.owned_by not in owners:
        named = ", ".join(sorted(str(o) for o in owners))
        raise BadInput(f"{flag} {url}: not a {client.name} server (/v1/models is owned by "
                       f"{named}); pass the --engine it runs")  # fmt: skip
    return models[0]


def check_baseline(server: Server, baseline: Server) -> None:
    """The baseline must serve the same model, with speculation off."""
    url = baseline.info.url
    if baseline.info.model != server.info.model:
        raise BadInput(f"--baseline-server {url} serves {baseline.info.model!r}, --server serves "
                       f"{server.info.model!r}: the baseline must be the same model without "
                       "speculation (give both the same served model name)")  # fmt: skip
    if baseline.info.speculative:
        raise BadInput(f"--baseline-server {url} reports speculative decoding on: start it "
                       "without speculation")  # fmt: skip


def _reason(exc: httpx.HTTPError) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
