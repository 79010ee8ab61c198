"""Engine overhead per speculative step with the PyTorch reference verifier vs compiled kernels.

Default model, temperature 1, n-gram drafter (`--drafter` for another model-free one, e.g.
`suffix`), SpS and Cactus; for every prompt each backend runs
back to back (same seeds, so the same tokens: the backends agree exactly). Overhead is the step
time outside model forward passes (drafting, logit processing, verification, cache bookkeeping)
as a share of step time; the kernel should lower that share. The verify time
(logit processing, softmax, noise and the acceptance rule) is reported over drafted steps only,
for each final-token noise mode (race draws V variates per step, icdf one uniform), and so is
the drafter's own time per step (inside `propose`).

Run: .venv/bin/python benchmarks/bench_engine_overhead.py [--per-suite 2] [--max-new-tokens 64]
     [--noise-mode race] [--noise-mode icdf] [--drafter suffix]
"""

from __future__ import annotations

import argparse
import statistics

from common import default_model_and_prompts

from specbench_cli.backends import resolve_backend
from specbench_cli.drafters import DraftContext, build_drafter
from specbench_cli.engine import Engine
from specbench_cli.sampling import SamplingConfig
from specbench_cli.strategies import get_strategy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-suite", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--noise-mode", action="append", choices=("race", "icdf"),
                    help="final-token noise mode(s) to time (default: race and icdf)")
    ap.add_argument("--drafter", default="ngram", help="model-free drafter spec, e.g. suffix")
    args = ap.parse_args()
    modes = args.noise_mode or ["race", "icdf"]
    m, eos, ids_list = default_model_and_prompts(args.per_suite)
    sampling = SamplingConfig(temperature=1.0)
    backends = ("torch", resolve_backend("cpu", "cpu"))
    print(f"backends: {backends} (the second falls back to torch if the kernel cannot build)")
    runs = [(b, mode) for mode in modes for b in backends]
    for name in ("sps", "cactus"):
        share: dict[tuple, list[float]] = {r: [] for r in runs}
        verify_ms: dict[tuple, list[float]] = {r: [] for r in runs}
        draft_ms: dict[tuple, list[float]] = {r: [] for r in runs}
        outputs: dict[tuple, list[list[int]]] = {r: [] for r in runs}
        for ids in ids_list:
            for run in runs:  # interleaved per prompt, so drift hits every contender alike
                backend, mode = run
                strategy = get_strategy(name, backend=backend)
                drafter = build_drafter(args.drafter, DraftContext(sampling, m.vocab_size))
                engine = Engine(m.model, m.vocab_size, sampling, strategy, drafter, 4, eos,
                                noise_mode=mode)
                over = total = 0.0
                tokens: list[int] = []
                for step in engine.generate(ids, args.max_new_tokens, seed=0):
                    tokens += step.tokens
                    if not step.prefill:
                        over += step.overhead_s
                        total += step.step_s
                        draft_ms[run].append(1000 * step.draft_s)
                        if step.drafted:  # steps without drafts never reach the verifier
                            verify_ms[run].append(1000 * step.verify_s)
                share[run].append(over / total)
                outputs[run].append(tokens)
        for mode in modes:
            same = outputs[(backends[0], mode)] == outputs[(backends[1], mode)]
            print(f"{name}, {mode} noise: identical tokens across backends: {same}")
        for run in runs:
            print(f"  {run[0]:6s} {run[1]:4s} overhead median "
                  f"{100 * statistics.median(share[run]):.2f}% of step time, verify median "
                  f"{statistics.median(verify_ms[run]):.3f} ms per drafted step "
                  f"({len(verify_ms[run])} steps), {args.drafter} drafter median "
                  f"{statistics.median(draft_ms[run]):.3f} ms / mean "
                  f"{statistics.mean(draft_ms[run]):.3f} ms per step")


if __name__ == "__main__":
    main()
