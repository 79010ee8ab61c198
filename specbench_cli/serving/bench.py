"""A run against serving engines: suites -> rounds of prompts -> records -> results.

Prompts go in rounds of `--concurrency` prompts: all prompts of a round are sent to one server
at once (each prompt's turns one after another, earlier answers fed back), then the same prompts
to the other server; which server goes first alternates every round, so slow drift of the
machine hits both alike and the speedup is paired per prompt, as in-process runs are. Records
are appended when their round finishes (on Ctrl-C, the finished prompts of the round too);
a request that fails is a failed record and the run goes on.
"""

from __future__ import annotations

import asyncio
import platform
from dataclasses import dataclass
from typing import Any

import httpx

from specbench_cli.config import RunConfig
from specbench_cli.interrupts import Interrupted, stop_signals_ignored
from specbench_cli.progress import ProgressReport
from specbench_cli.prompts import Message, prompt_seed
from specbench_cli.results import BASELINE, PromptRecord, make_results, record_error
from specbench_cli.run_folder import RunFolder, RunOutcome
from specbench_cli.serving.chat import chat
from specbench_cli.serving.preflight import (
    CHECK_TIMEOUT_S,
    WARMUP_TOKENS,
    Server,
    check_baseline,
    check_server,
)
from specbench_cli.serving.protocol import Counts
from specbench_cli.suite_records import Prompt

REQUEST_TIMEOUT_S = 900.0  # one chat completion, streamed; a stalled server fails the request


@dataclass
class ServedContender:
    label: str  # record strategy label: the engine name, or "baseline"
    drafter: str  # "server" (the engine drafts) or "none"
    server: Server


def execute_served(cfg: RunConfig, progress: ProgressReport) -> RunOutcome:
    """Check the servers, run every suite, write the run folder; bad input raises first, a stop
    signal ends the run with the finished records."""
    from specbench_cli.suites import load_suite

    suites = [load_suite(s, cfg.limit) for s in cfg.suites]
    first = next((s.prompts[0] for s in suites if s.prompts), None)
    contenders = asyncio.run(_preflight(cfg, first))
    with RunFolder.claim(cfg.output) as folder:
        return _served(cfg, contenders, suites, folder, progress)


def _served(cfg: RunConfig, contenders: list[ServedContender], suites: list[Any],
            folder: RunFolder, progress: ProgressReport) -> RunOutcome:  # fmt: skip
    from specbench_cli.bootstrap import method_info
    from specbench_cli.metrics import aggregate
    from specbench_cli.serving.latency import add_latency

    stop: Interrupted | None = None
    try:
        asyncio.run(_run_suites(cfg, contenders, suites, folder, progress))
    except Interrupted as exc:  # the round's finished prompts were kept as the loop closed
        stop = exc
    with stop_signals_ignored():  # a second signal must not lose the results of the first
        records = folder.records()
        rows = aggregate(records, _strategy_info(contenders), cfg.k)
        add_latency(rows, records)
        data = make_results(cfg.to_dict(), served_environment(contenders), rows, method_info(),
                            stop.name if stop else None)  # fmt: skip
        folder.write_results(data)
    return RunOutcome(folder.path, data, stop)


async def _preflight(cfg: RunConfig, first: Prompt | None) -> list[ServedContender]:
    """The checked servers as contenders, the baseline first (as in-process runs list it)."""
    text = first.turns[0] if first else "Hello."
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": WARMUP_TOKENS,
            "temperature": cfg.temperature, "seed": cfg.seed}  # fmt: skip
    warmup = [body] * max(cfg.warmup, 1)  # at least one: it is also the endpoint check
    async with httpx.AsyncClient(timeout=httpx.Timeout(REQUEST_TIMEOUT_S,
                                                       connect=CHECK_TIMEOUT_S)) as http:
        server = await check_server(http, "--server", _url(cfg.server), cfg.engine, warmup)
        contenders = [ServedContender(cfg.engine, "server", server)]
        if cfg.baseline_server:
            base = await check_server(http, "--baseline-server", _url(cfg.baseline_server),
                                      cfg.engine, warmup)  # fmt: skip
            check_baseline(server, base)
            contenders.insert(0, ServedContender(BASELINE, "none", base))
    return contenders


def _url(url: str | None) -> str:
    return (url or "").rstrip("/")


async def _run_suites(cfg: RunConfig, contenders: list[ServedContender], suites: list[Any],
                      folder: RunFolder, progress: ProgressReport) -> None:  # fmt: skip
    limits = httpx.Limits(max_connections=2 * cfg.concurrency + 4)
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S, connect=CHECK_TIMEOUT_S)
    total = sum(len(s.prompts) for s in suites) * len(contenders)
    done = rounds = 0
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:
        for suite in suites:
            max_new = cfg.token_budget(suite.max_new_tokens)
            for start in range(0, len(suite.prompts), cfg.concurrency):
                batch = suite.prompts[start:start + cfg.concurrency]
                for c in contenders if rounds % 2 == 0 else contenders[::-1]:
                    progress.advance(done, total, f"{suite.name} {start + 1}-"
                                     f"{start + len(batch)} {c.label}")  # fmt: skip
                    round_ = Round(http, cfg, c, suite, max_new, f"{suite.name}:{rounds}")
                    await round_.run(batch, folder)
                    done += len(batch)
                rounds += 1
    progress.advance(done, total, "done")


class Round:
    """Some prompts sent at once to one server; their records are written when all finished."""

    def __init__(self, http: httpx.AsyncClient, cfg: RunConfig, contender: ServedContender,
                 suite: Any, max_new: int, window: str) -> None:  # fmt: skip
        self.http, self.cfg, self.c, self.suite = http, cfg, contender, suite
        self.max_new, self.window = max_new, window
        self.client, self.info = contender.server.client, contender.server.info

    async def run(self, batch: list[Prompt], folder: RunFolder) -> None:
        from specbench_cli.quality import score_record

        shared = not self.client.per_request  # counts come from server-wide counters
        before = await self.client.counters(self.http, self.info) if shared else None
        tasks = [asyncio.ensure_future(self.prompt(p)) for p in batch]
        finished: list[tuple[PromptRecord, Prompt]] = []
        window = None
        try:
            finished = list(zip(await asyncio.gather(*tasks), batch, strict=True))
            window = await self._window(before, len(batch)) if shared else None
        except asyncio.CancelledError:  # Ctrl-C: keep what finished; its window is unknown
            finished = [(t.result(), p) for t, p in zip(tasks, batch, strict=True)
                        if t.done() and not t.cancelled()]
            window = None
            raise
        finally:
            for record, prompt in finished:
                if record["status"] == "ok":
                    if shared:
                        record["engine_counts"] = window
                    score_record(record, self.suite.scorer, prompt)
                folder.append(record)

    async def _window(self, before: Counts | None, size: int) -> dict[str, Any] | None:
        """Counts of this round's requests: server-wide counters after minus before."""
        after = await self.client.counters(self.http, self.info)
        if before is None or after is None:
            return None
        return {**(after - before).to_dict(), "window": self.window, "window_size": size}

    async def prompt(self, prompt: Prompt) -> PromptRecord:
        """Every turn of one prompt; any failure makes the record a failed one, the run goes on."""
        record = self._record(prompt)
        try:
            await self._turns(prompt, record)
        except Exception as exc:  # noqa: BLE001 - one prompt's failure must not end the run
            return {**self._record(prompt), "status": "failed", "error": record_error(exc)}
        return record

    async def _turns(self, prompt: Prompt, record: PromptRecord) -> None:
        messages: list[Message] = []
        counts: Counts | None = Counts(0, 0, 0, []) if self.client.per_request else None
        decode_s = 0.0
        decode_tokens = 0
        for turn, text in enumerate(prompt.turns):
            messages.append({"role": "user", "content": text})
            seed = prompt_seed(self.cfg.seed, self.suite.name, prompt.id, turn)
            body = {**self.client.request_fields(self.info, self.cfg.top_k, self.cfg.top_p),
                    "model": self.info.model, "messages": list(messages),
                    "max_tokens": self.max_new, "temperature": self.cfg.temperature,
                    "seed": seed}  # fmt: skip
            reply = await chat(self.http, self.info.url, body)
            messages.append({"role": "assistant", "content": reply.text})
            record["output_text"].append(reply.text)
            record["new_tokens"] += reply.completion_tokens
            truncated = reply.finish_reason == "length"
            record["truncated"] |= truncated
            if reply.prompt_tokens is None:
                record["prompt_tokens"] = None
            elif record["prompt_tokens"] is not None:
                record["prompt_tokens"] += reply.prompt_tokens
            record["turns"].append({"prompt_tokens": reply.prompt_tokens,
                                    "new_tokens": reply.completion_tokens,
                                    "truncated": truncated, "wall_s": reply.e2e_s,
                                    "ttft_s": reply.ttft_s})  # fmt: skip
            record["wall_s"] += reply.e2e_s
            if turn == 0:
                record["ttft_s"] = reply.ttft_s
            if reply.ttft_s is not None and reply.completion_tokens > 1:
                decode_s += reply.e2e_s - reply.ttft_s
                decode_tokens += reply.completion_tokens - 1
            if counts is not None:
                got = self.client.reply_counts(reply, self.info)
                counts = None if got is None else counts + got
        record["tpot_s"] = decode_s / decode_tokens if decode_tokens else None
        if self.client.per_request:
            record["engine_counts"] = None if counts is None else {**counts.to_dict(),
                                                                   "window": None}

    def _record(self, prompt: Prompt) -> PromptRecord:
        """A fresh record; what a server does not report (token ids, memory, divergence, draft
        and verify time, per-step lengths) is None."""
        return {
            "suite": self.suite.name, "prompt_id": prompt.id,
            "category": prompt.category or self.suite.name, "strategy": self.c.label,
            "drafter": self.c.drafter, "status": "ok", "error": None, "output_token_ids": None,
            "output_text": [], "new_tokens": 0, "prompt_tokens": 0,
            "max_new_tokens": self.max_new, "truncated": False, "turns": [],
            "wall_s": 0.0, "ttft_s": None, "tpot_s": None,
            "draft_s": None, "verify_s": None, "target_forward_passes": None,
            "accepted_lengths": None, "drafted_lengths": None, "peak_memory_bytes": None,
            "kl_sum": None, "tv_sum": None, "drafted_positions": None, "engine_counts": None,
        }  # fmt: skip


def _strategy_info(contenders: list[ServedContender]) -> dict[str, dict[str, Any]]:
    """Each row's name and parameters: the speculative configuration the server reports."""
    return {c.label: {"name": c.label,
                      "params": c.server.info.details.get("speculative_config") or {}}
            for c in contenders}  # fmt: skip


def served_environment(contenders: list[ServedContender]) -> dict[str, Any]:
    """The client machine, and each server as its endpoints describe it."""
    from specbench_cli import __version__
    from specbench_cli.environment import cpu_name, git_sha

    servers = {("baseline_server" if c.label == BASELINE else "server"): c.server.info.to_dict()
               for c in contenders}  # fmt: skip
    engine = servers["server"]
    return {
        "specbench": __version__, "python": platform.python_version(),
        "platform": platform.platform(), "client_cpu": cpu_name(), "git_sha": git_sha(),
        # the hardware that decodes is the server's, which no endpoint reports
        "device": f"{engine['engine']} server", "cpu": None, "gpu": None, "cpu_threads": None,
        **servers,
    }  # fmt: skip
