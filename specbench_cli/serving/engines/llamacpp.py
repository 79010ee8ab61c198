"""llama.cpp's `llama-server`: counts ride on every response, in `timings`.

- `timings.draft_n`: tokens drafted for this request; `timings.draft_n_accepted`: how many the
  target accepted. The server writes both only when `draft_n > 0` (`result_timings::to_json`),
  so their absence from a `timings` object means nothing was drafted. The server log prints the
  same two numbers per request ("draft acceptance = ... (A accepted / D generated)").
- Verification steps and per-position acceptance are not reported: null.
- Description: `/props` (`build_info`, `model_path`), `/slots` (`speculative` per slot and the
  `speculative.*` parameters of the last request; absent when started with `--no-slots`).
- Sampling: the server's defaults add top-k 40 and min-p 0.05; requests override both so the
  server samples what specbench asked for (top-k 0 = off, as in specbench).
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from specbench_cli.serving.engines import get_json
from specbench_cli.serving.protocol import Counts, Reply, ServerInfo


class LlamaCppClient:
    name: ClassVar[str] = "llamacpp"
    owned_by: ClassVar[str] = "llamacpp"
    per_request: ClassVar[bool] = True

    async def describe(self, http: httpx.AsyncClient, url: str, model: dict[str, Any]
                       ) -> ServerInfo:  # fmt: skip
        props = await get_json(http, f"{url}/props") or {}
        slots = await get_json(http, f"{url}/slots")
        slots = slots if isinstance(slots, list) else []
        flags = {s.get("speculative") for s in slots if isinstance(s, dict)} - {None}
        speculative = flags.pop() if len(flags) == 1 else None
        params = next((s["params"] for s in slots
                       if isinstance(s, dict) and isinstance(s.get("params"), dict)), {})
        details = {
            "model_path": props.get("model_path"),
            "total_slots": props.get("total_slots"),
            "speculative_config": {k: v for k, v in params.items() if k.startswith("speculative")},
        }
        return ServerInfo(url, self.name, model["id"], props.get("build_info"), speculative,
                          details)  # fmt: skip

    def request_fields(self, info: ServerInfo, top_k: int, top_p: float) -> dict[str, Any]:
        return {"top_k": top_k, "top_p": top_p, "min_p": 0.0, "cache_prompt": False}

    def reply_counts(self, reply: Reply, info: ServerInfo) -> Counts | None:
        timings = reply.extras.get("timings")
        if not isinstance(timings, dict):
            return None
        drafted, accepted = timings.get("draft_n", 0), timings.get("draft_n_accepted", 0)
        if not all(isinstance(v, int) and v >= 0 for v in (drafted, accepted)):
            return None
        return Counts(drafted=drafted, accepted=accepted)

    async def counters(self, http: httpx.AsyncClient, info: ServerInfo) -> Counts | None:
        return None
