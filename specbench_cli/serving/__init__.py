"""Benchmark a serving engine's speculative decoding over its OpenAI-compatible HTTP endpoint.

The suites' prompts go to `--server` (speculation on) and, alternating, to `--baseline-server`
(the same model without it) as chat completions; each prompt becomes one `PromptRecord` per
server, so metrics, results, tables, `compare` and the CI gate treat the run like an in-process
one. Acceptance comes from what each engine itself reports (`engines/`); what an engine does not
report is null, never estimated.

- `protocol.py`: `ServerInfo`, `Counts`, `Reply` and the `EngineClient` protocol.
- `engines/`: one client per engine (vllm, sglang, llamacpp) and the `ENGINE_CLIENTS` registry.
- `chat.py`: one streamed chat completion -> `Reply` (TTFT, latency, usage, engine fields).
- `preflight.py`: reachability, engine identity, a working endpoint, before anything runs.
- `bench.py`: rounds of `--concurrency` prompts, alternating servers, records -> results.
- `counts.py`: acceptance figures from engine counts (used by `metrics.py`).
- `latency.py`: TTFT / TPOT / end-to-end latency percentiles per results row.
- `local_server.py`: start a local llama.cpp `llama-server` (tests, benchmarks).
"""

from __future__ import annotations
