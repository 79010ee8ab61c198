"""vLLM: server-wide Prometheus counters, read before and after a window of requests.

`/metrics` exposes, per engine (label `engine`) and model, the counters
`vllm:spec_decode_num_drafts` (verification steps with drafts), `..._num_draft_tokens`,
`..._num_accepted_tokens` and `..._num_accepted_tokens_per_pos` (label `position`, 0-based),
written with the `_total` suffix. Their difference across a window is that window's counts,
summed over engines. The window is one round of requests (one prompt at `--concurrency 1`), so
the counts are exact as long as nothing else uses the server meanwhile. A server started
without speculation has no such counters: zero drafts.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar

import httpx

from specbench_cli.serving.engines import get_json
from specbench_cli.serving.protocol import NO_DRAFTS, Counts, Reply, ServerInfo

PREFIX = "vllm:spec_decode_"
SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+"
                    r"(?P<value>\S+)(?:\s+\S+)?$")  # fmt: skip
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def spec_counters(text: str) -> Counts | None:
    """Counts summed over label sets from a Prometheus text exposition; None without any."""
    totals: dict[str, float] = {}
    per_pos: dict[int, float] = {}
    for line in text.splitlines():
        match = SAMPLE.match(line.strip())
        if not match or not match["name"].startswith(PREFIX) or match["name"].endswith("_created"):
            continue
        name = match["name"][len(PREFIX):].removesuffix("_total")
        try:
            value = float(match["value"])
        except ValueError:
            continue
        if not math.isfinite(value):
            continue
        if name == "num_accepted_tokens_per_pos":
            position = dict(LABEL.findall(match["labels"] or "")).get("position")
            if position is not None and position.isdigit():
                per_pos[int(position)] = per_pos.get(int(position), 0.0) + value
        else:
            totals[name] = totals.get(name, 0.0) + value
    needed = ("num_drafts", "num_draft_tokens", "num_accepted_tokens")
    if not all(key in totals for key in needed):
        return None
    positions = [round(per_pos.get(i, 0.0)) for i in range(max(per_pos) + 1)] if per_pos else None
    return Counts(drafted=round(totals["num_draft_tokens"]),
                  accepted=round(totals["num_accepted_tokens"]),
                  drafts=round(totals["num_drafts"]), accepted_per_position=positions)


class VLLMClient:
    name: ClassVar[str] = "vllm"
    owned_by: ClassVar[str] = "vllm"
    per_request: ClassVar[bool] = False

    async def describe(self, http: httpx.AsyncClient, url: str, model: dict[str, Any]
                       ) -> ServerInfo:  # fmt: skip
        version = await get_json(http, f"{url}/version")
        metrics = await self._metrics(http, url)
        counts = spec_counters(metrics) if metrics is not None else None
        details = {"max_model_len": model.get("max_model_len"),
                   "num_speculative_tokens": len(counts.accepted_per_position or [])
                   if counts else None}  # fmt: skip
        return ServerInfo(url, self.name, model["id"],
                          version.get("version") if isinstance(version, dict) else None,
                          None if metrics is None else counts is not None, details)

    def request_fields(self, info: ServerInfo, top_k: int, top_p: float) -> dict[str, Any]:
        return {"top_p": top_p, "top_k": top_k} if top_k > 0 else {"top_p": top_p}

    def reply_counts(self, reply: Reply, info: ServerInfo) -> Counts | None:
        return None

    async def counters(self, http: httpx.AsyncClient, info: ServerInfo) -> Counts | None:
        metrics = await self._metrics(http, info.url)
        if metrics is None:
            return None
        counts = spec_counters(metrics)
        return counts if counts is not None else (NO_DRAFTS if info.speculative is False else None)

    @staticmethod
    async def _metrics(http: httpx.AsyncClient, url: str) -> str | None:
        try:
            response = await http.get(f"{url}/metrics")
        except httpx.HTTPError:
            return None
        return response.text if response.status_code == 200 else None
