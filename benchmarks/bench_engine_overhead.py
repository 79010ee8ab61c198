"""Engine overhead per speculative step: the PyTorch reference verifier vs the compiled kernel.

Default model, temperature 1, n-gram drafter, SpS and Cactus; for every prompt each contender
runs back to back (same seeds). Contenders: the reference (`--backend torch`); the CPU kernel fed
probabilities that `sampling.py` computed in torch (the engine's flow before the kernel took
logits: "probs in"); the CPU kernel fed the raw logits through `verify_logits` and its tensors
("logits, tensors"); and the engine's flow now, the raw logits and the drafts, seeds and counters
as lists straight to the kernel (`Strategy.verify_rows`: "logits, lists"). Overhead is the step
time outside model forward passes (drafting, logit processing, verification, cache bookkeeping)
as a share of step time. The verify time (logit processing, softmax and the acceptance rule) is
reported over drafted steps only, with its ratio to the reference, as wall time (what the engine
records) and as the calling thread's CPU time (which a machine shared with other jobs disturbs
far less; it counts all the work when torch runs on one thread). The drafter's own time per step
(inside `propose`, part of the overhead) is reported over all contenders' decoding steps: median,
99th percentile and maximum. Tokens must be identical across contenders.

Run: .venv/bin/python benchmarks/bench_engine_overhead.py [--per-suite 2] [--max-new-tokens 64]
     [--threads N] [--drafter suffix]  (1 thread gives steadier figures on a shared machine)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import default_model_and_prompts

from specbench_cli.backends import resolve_backend
from specbench_cli.drafters import DraftContext, build_drafter
from specbench_cli.engine import Engine
from specbench_cli.sampling import SamplingConfig, process_logits, to_probs
from specbench_cli.strategies import get_strategy
from specbench_cli.strategies.rows import emitted_by_row, padded_inputs, verify_rows_via_tensors


class ProbsInEngine(Engine):
    """The engine with its verify step as it was before the kernel took logits: laws computed
    by `sampling.py` in torch, then `Strategy.verify_with_noise` on probabilities."""

    def _verify(self, logits: torch.Tensor, drafts: list[list[int]],
                draft_probs: list[torch.Tensor | None], rows: list
                ) -> tuple[list[int], list[int]]:  # fmt: skip
        processed = process_logits(logits, self.sampling)
        x, num_drafts, noise = padded_inputs(logits, drafts, [r.seed for r in rows],
                                             [len(r.context) for r in rows],
                                             self.strategy.uses_noise)  # fmt: skip
        result = self.strategy.verify_with_noise(
            to_probs(processed, self.sampling), None, x, noise, target_logits=processed,
            num_drafts=num_drafts, validate=False)  # fmt: skip
        return emitted_by_row(result)


class TensorsEngine(Engine):
    """The engine with the logits going through `verify_logits` and its tensors (ids, counts,
    seeds and counters built with torch, the result read back with `.tolist()`)."""

    def _verify(self, logits: torch.Tensor, drafts: list[list[int]],
                draft_probs: list[torch.Tensor | None], rows: list
                ) -> tuple[list[int], list[int]]:  # fmt: skip
        return verify_rows_via_tensors(self.strategy, logits, None, drafts, self.sampling,
                                       [r.seed for r in rows],
                                       [len(r.context) for r in rows])  # fmt: skip


# verify per drafted step with the CPU kernel (probabilities in) when issue 17 was filed
BEFORE_MS = {"sps": 0.81, "cactus": 0.78}


def timed(engine: Engine, cpu_ms: list[float]) -> Engine:
    """`engine` with the CPU time of each verify step appended to `cpu_ms`."""
    verify = engine._verify

    def timed_verify(*args: object) -> tuple[int, int]:
        t0 = time.thread_time()
        out = verify(*args)
        cpu_ms.append(1000 * (time.thread_time() - t0))
        return out

    engine._verify = timed_verify  # type: ignore[method-assign]
    return engine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-suite", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--drafter", default="ngram", help="model-free drafter spec, e.g. suffix")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    m, eos, ids_list = default_model_and_prompts(args.per_suite)
    sampling = SamplingConfig(temperature=1.0)
    kernel = resolve_backend("cpu", "cpu")
    print(f"compiled backend: {kernel} (torch if the kernel cannot build)")
    runs = {"torch": ("torch", Engine), f"{kernel} probs in": (kernel, ProbsInEngine),
            f"{kernel} logits, tensors": (kernel, TensorsEngine),
            f"{kernel} logits, lists": (kernel, Engine)}  # fmt: skip
    for name in ("sps", "cactus"):
        share: dict[str, list[float]] = {r: [] for r in runs}
        verify_ms: dict[str, list[float]] = {r: [] for r in runs}
        cpu_ms: dict[str, list[float]] = {r: [] for r in runs}
        outputs: dict[str, list[list[int]]] = {r: [] for r in runs}
        draft_ms: list[float] = []
        for ids in ids_list:
            for run, (backend, engine_cls) in runs.items():  # interleaved per prompt
                engine = timed(engine_cls(m.model, m.vocab_size, sampling,
                                          get_strategy(name, backend=backend),
                                          build_drafter(args.drafter,
                                                        DraftContext(sampling, m.vocab_size)),
                                          4, eos), cpu_ms[run])  # fmt: skip
                over = total = 0.0
                tokens: list[int] = []
                for step in engine.generate(ids, args.max_new_tokens, seed=0):
                    tokens += step.tokens
                    if not step.prefill:
                        over += step.overhead_s
                        total += step.step_s
                        draft_ms.append(1000 * step.draft_s)
                        if step.drafted:  # steps without drafts never reach the verifier
                            verify_ms[run].append(1000 * step.verify_s)
                share[run].append(over / total)
                outputs[run].append(tokens)
        same = all(out == outputs["torch"] for out in outputs.values())
        print(f"{name}: identical tokens across contenders: {same}")
        q = statistics.quantiles(draft_ms, n=100)
        print(f"  drafter {args.drafter}: {statistics.median(draft_ms):.3f} ms per step median, "
              f"{q[98]:.3f} ms 99th percentile, {max(draft_ms):.3f} ms max; "
              f"{len(draft_ms)} steps")
        reference = statistics.median(verify_ms["torch"])
        reference_cpu = statistics.median(cpu_ms["torch"])
        for run in runs:
            verify, cpu = statistics.median(verify_ms[run]), statistics.median(cpu_ms[run])
            print(f"  {run:20s} overhead median {100 * statistics.median(share[run]):.2f}% of "
                  f"step time; verify median per drafted step {verify:.3f} ms wall "
                  f"({reference / verify:.2f}x the reference), {cpu:.3f} ms CPU "
                  f"({reference_cpu / cpu:.2f}x); {len(verify_ms[run])} steps")
        before, now = (statistics.median(verify_ms[f"{kernel} {r}"]) for r in ("probs in",
                                                                               "logits, lists"))
        goal = BEFORE_MS[name] / 2
        print(f"  goal: at most {goal:.3f} ms wall, half the {BEFORE_MS[name]} ms of the kernel "
              f"engine path when issue 17 was filed: {now:.3f} ms, "
              f"{'met' if now <= goal else 'NOT met'}; lists vs probs in this run: "
              f"{before / now:.2f}x")


if __name__ == "__main__":
    main()
