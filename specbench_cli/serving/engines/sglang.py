"""SGLang: counts ride on every response, when the request asks for them.

- Requests carry `return_spec_tokens_details: true`; the response's
  `sglext.spec_tokens_details` then holds `spec_num_proposed_drafts` (drafted tokens),
  `spec_num_correct_drafts` (accepted drafted tokens) and `spec_verify_ct` (verification
  steps). Older versions return the same counts in `meta_info` as `spec_draft_token_num`,
  `spec_accept_token_num` and `spec_verify_ct`; both are read. A response without them gives
  null counts on a speculating server, zero on one that does not speculate.
- Per-position acceptance is not reported: null.
- Description: `/server_info` (older versions: `/get_server_info`) with `version` and the
  `speculative_*` server arguments.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from specbench_cli.serving.engines import get_json
from specbench_cli.serving.protocol import NO_DRAFTS, Counts, Reply, ServerInfo

# (drafted, accepted, steps) under the current names, then the older ones
FIELD_NAMES = (
    ("spec_num_proposed_drafts", "spec_num_correct_drafts", "spec_verify_ct"),
    ("spec_draft_token_num", "spec_accept_token_num", "spec_verify_ct"),
)


class SGLangClient:
    name: ClassVar[str] = "sglang"
    owned_by: ClassVar[str] = "sglang"
    per_request: ClassVar[bool] = True

    async def describe(self, http: httpx.AsyncClient, url: str, model: dict[str, Any]
                       ) -> ServerInfo:  # fmt: skip
        info = await get_json(http, f"{url}/server_info")
        if not isinstance(info, dict):
            info = await get_json(http, f"{url}/get_server_info")
        info = info if isinstance(info, dict) else {}
        spec = {k: v for k, v in info.items() if k.startswith("speculative") and v is not None}
        known = "speculative_algorithm" in info
        return ServerInfo(url, self.name, model["id"], info.get("version"),
                          bool(spec.get("speculative_algorithm")) if known else None,
                          {"model_path": info.get("model_path"), "speculative_config": spec})

    def request_fields(self, info: ServerInfo, top_k: int, top_p: float) -> dict[str, Any]:
        fields: dict[str, Any] = {"top_p": top_p, "return_spec_tokens_details": True}
        return {**fields, "top_k": top_k} if top_k > 0 else fields

    def reply_counts(self, reply: Reply, info: ServerInfo) -> Counts | None:
        sglext = reply.extras.get("sglext")
        details = sglext.get("spec_tokens_details") if isinstance(sglext, dict) else None
        for source in [details, *reply.meta]:
            if not isinstance(source, dict):
                continue
            for drafted, accepted, steps in FIELD_NAMES:
                values = [source.get(drafted), source.get(accepted), source.get(steps)]
                if all(isinstance(v, int) and v >= 0 for v in values):
                    return Counts(drafted=values[0], accepted=values[1], drafts=values[2])
        return NO_DRAFTS if info.speculative is False else None

    async def counters(self, http: httpx.AsyncClient, info: ServerInfo) -> Counts | None:
        return None
