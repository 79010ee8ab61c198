"""What every engine client provides, and the values it hands back.

An engine client knows three things about its engine: how it names itself on `/v1/models`,
how to describe a running server (version, model, speculative configuration as far as the
endpoints report it), and where the engine reports speculative decoding counts: on each response
(llama.cpp's `timings`, SGLang's `sglext`) or in server-wide counters read before and after a
window of requests (vLLM's Prometheus counters).
"""

from __future__ import annotations

from dataclasses import asdict, astuple, dataclass, field
from typing import Any, ClassVar, Protocol

import httpx


class ServerError(Exception):
    """A request the server answered with an error, or with a response we cannot read."""


@dataclass(frozen=True)
class ServerInfo:
    """A server as its endpoints describe it; recorded in the results' environment."""

    url: str
    engine: str
    model: str  # the model id requests name (from /v1/models)
    version: str | None  # engine version or build, when an endpoint reports it
    speculative: bool | None  # speculation on, as the server reports it; None: not reported
    details: dict[str, Any] = field(default_factory=dict)  # speculative config and the like

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Counts:
    """Speculative decoding counts of one request or one window of requests, as reported.

    `None` means the engine does not report that figure."""

    drafted: int | None  # drafted tokens
    accepted: int | None  # accepted drafted tokens (the bonus/correction token not included)
    drafts: int | None = None  # verification steps that carried drafts
    accepted_per_position: list[int] | None = None  # accepted drafts at position 1, 2, ...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __add__(self, other: Counts) -> Counts:
        pairs = zip(astuple(self), astuple(other), strict=True)
        return Counts(*(combine(a, b, 1) for a, b in pairs))

    def __sub__(self, before: Counts) -> Counts:
        """The counts of a window: counters read after it minus the same read before."""
        pairs = zip(astuple(self), astuple(before), strict=True)
        return Counts(*(combine(a, b, -1) for a, b in pairs))


def combine(a: Any, b: Any, sign: int = 1) -> Any:
    """a + sign * b for counts and per-position lists (padded with 0); None stays unknown."""
    if a is None or b is None:
        return None
    if isinstance(a, list):
        width = max(len(a), len(b))
        a, b = a + [0] * (width - len(a)), b + [0] * (width - len(b))
        return [x + sign * y for x, y in zip(a, b, strict=True)]
    return a + sign * b


NO_DRAFTS = Counts(drafted=0, accepted=0, drafts=0)  # a server that does not speculate


@dataclass
class Reply:
    """One chat completion as the client saw it."""

    text: str
    completion_tokens: int  # usage.completion_tokens, as the server counts them
    e2e_s: float  # request sent -> last byte
    ttft_s: float | None  # request sent -> first content token; None if no content came
    extras: dict[str, Any]  # top-level fields besides choices/usage (timings, sglext, ...)
    meta: list[dict[str, Any]] = field(default_factory=list)  # per-choice extras (meta_info)
    prompt_tokens: int | None = None  # usage.prompt_tokens, when the server reports it
    finish_reason: str | None = None  # "length": stopped at max_tokens


class EngineClient(Protocol):
    name: ClassVar[str]  # the --engine value
    owned_by: ClassVar[str]  # how the engine signs /v1/models entries
    per_request: ClassVar[bool]  # counts ride on each response; else on server-wide counters

    async def describe(self, http: httpx.AsyncClient, url: str, model: dict[str, Any]
                       ) -> ServerInfo:  # fmt: skip
        """Version and speculative configuration, from the engine's own endpoints."""

    def request_fields(self, info: ServerInfo, top_k: int, top_p: float) -> dict[str, Any]:
        """Engine-specific request fields: sampling extensions, asking for counts."""

    def reply_counts(self, reply: Reply, info: ServerInfo) -> Counts | None:
        """Counts of one request from its response (per-request engines); None if absent."""

    async def counters(self, http: httpx.AsyncClient, info: ServerInfo) -> Counts | None:
        """Server-wide cumulative counters (window engines); None where the engine has none."""
