"""specbench greedy prompt lookup vs transformers' own, side by side in one process.

On the default model, the same prompts and greedy settings, interleaved per prompt and repeated:
  - transformers `generate` (plain) and `generate(prompt_lookup_num_tokens=4)`
  - specbench's autoregressive baseline and its greedy n-gram speculative decoding
Prints median tokens/s over rounds, the ratios the project tracks, and the engine's own overhead
per speculative step (time outside the model forward passes, as a share of step time). Every
output is checked to be identical to `generate`'s greedy output.

Goals: specbench PLD >= 1.3x transformers PLD; specbench baseline >= 1.0x generate;
overhead < 5% of step time.

Run: .venv/bin/python benchmarks/bench_prompt_lookup.py [--rounds 3] [--max-new-tokens 96]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import default_model_and_prompts

from specbench_cli.drafters import parse_drafter_spec
from specbench_cli.drafters.ngram import NgramDrafter
from specbench_cli.engine import Engine
from specbench_cli.sampling import SamplingConfig
from specbench_cli.strategies import get_strategy


def hf_generate(model, ids, n, eos, **kwargs):
    inp = torch.tensor([ids])
    start = time.perf_counter()
    out = model.generate(inp, attention_mask=torch.ones_like(inp), do_sample=False,
                         max_new_tokens=n, eos_token_id=list(eos), pad_token_id=eos[0], **kwargs)
    return out[0, len(ids):].tolist(), time.perf_counter() - start


def engine_generate(engine, ids, n):
    tokens, overhead, total = [], 0.0, 0.0
    start = time.perf_counter()
    for step in engine.generate(ids, n, seed=0):
        tokens += step.tokens
        if not step.prefill:
            overhead += step.overhead_s
            total += step.step_s
    return tokens, time.perf_counter() - start, overhead, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--per-suite", type=int, default=3)
    ap.add_argument("--drafter", default="ngram", help="ngram drafter spec, e.g. ngram:min_ngram=2")
    args = ap.parse_args()
    m, eos, ids_list = default_model_and_prompts(args.per_suite)
    greedy = SamplingConfig(temperature=0.0)
    _, params = parse_drafter_spec(args.drafter)
    baseline = Engine(m.model, m.vocab_size, greedy, eos_ids=eos)
    pld = Engine(m.model, m.vocab_size, greedy, get_strategy("greedy"), NgramDrafter(**params),
                 4, eos)
    n = args.max_new_tokens
    hf_generate(m.model, ids_list[0], 8, eos)  # warm-up
    engine_generate(pld, ids_list[0], 8)

    names = ("hf_generate", "hf_pld", "sb_baseline", "sb_pld")
    rates: dict[str, list[float]] = {k: [] for k in names}
    overhead = total = 0.0
    mismatches = 0
    for r in range(args.rounds):
        tokens = dict.fromkeys(names, 0)
        times = dict.fromkeys(names, 0.0)
        for ids in ids_list:
            ref, t = hf_generate(m.model, ids, n, eos)
            tokens["hf_generate"] += len(ref)
            times["hf_generate"] += t
            out, t = hf_generate(m.model, ids, n, eos, prompt_lookup_num_tokens=4)
            tokens["hf_pld"] += len(out)
            times["hf_pld"] += t
            mismatches += out != ref
            out, t, _, _ = engine_generate(baseline, ids, n)
            tokens["sb_baseline"] += len(out)
            times["sb_baseline"] += t
            mismatches += out != ref
            out, t, o, tot = engine_generate(pld, ids, n)
            tokens["sb_pld"] += len(out)
            times["sb_pld"] += t
            overhead += o
            total += tot
            mismatches += out != ref
        for k in names:
            rates[k].append(tokens[k] / times[k])
        print(f"round {r + 1}: " + ", ".join(f"{k} {rates[k][-1]:.2f} tok/s" for k in names))

    med = {k: statistics.median(v) for k, v in rates.items()}
    def ratio_of(a: str, b: str) -> float:
        # per-round ratios, then the median: both sides of a ratio ran in the same round
        return statistics.median(x / y for x, y in zip(rates[a], rates[b], strict=True))

    ratio = {
        "specbench PLD / transformers PLD (goal >= 1.3)": ratio_of("sb_pld", "hf_pld"),
        "specbench baseline / transformers generate (goal >= 1.0)":
            ratio_of("sb_baseline", "hf_generate"),
        "transformers PLD / transformers generate": ratio_of("hf_pld", "hf_generate"),
        "specbench PLD / specbench baseline": ratio_of("sb_pld", "sb_baseline"),
    }
    print(f"\n{len(ids_list)} prompts x {args.rounds} rounds, max_new_tokens {n}, greedy, "
          f"torch threads {torch.get_num_threads()}, drafter {args.drafter}")
    for k in names:
        print(f"  median {k:12s} {med[k]:7.2f} tok/s")
    for k, v in ratio.items():
        print(f"  {k:58s} {v:.2f}x")
    print(f"  engine overhead per speculative step (outside forward passes): "
          f"{100 * overhead / total:.1f}% of step time (goal < 5%)")
    print(f"  outputs differing from generate's greedy output: {mismatches}")


if __name__ == "__main__":
    main()
