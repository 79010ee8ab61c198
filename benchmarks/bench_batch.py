"""Batched decoding: specbench's baseline against transformers `generate`, and the speedup of
greedy prompt lookup over the baseline, at batch sizes 1, 2, 4, 8, 16, in one process.

On the default model, greedy, the same prompts at every batch size, cut into groups of B in
order. For each group, interleaved: transformers `generate` on the left-padded group, specbench's
baseline on the same group, and each strategy with the n-gram drafter. Throughput is a group's
new tokens (up to and including each row's EOS) over its wall time, summed over groups and
median over rounds; speedups are per-round ratios, median over rounds. Outputs are checked:
each strategy's rows against the baseline's at the same batch size (greedy equivalence), the
baseline's against `generate`'s, and every batch size's against batch 1.

Goals: specbench baseline >= 0.95x `generate` at every batch size; the baseline at batch 4
>= 2x the baseline at batch 1. The speedup-versus-batch curve shows where speculation stops
paying on this machine.

Run: .venv/bin/python benchmarks/bench_batch.py [--batch-sizes 1,2,4,8,16] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch
from common import default_model_and_prompts

from specbench_cli.drafters import DraftContext, build_drafter
from specbench_cli.engine import Engine
from specbench_cli.sampling import SamplingConfig
from specbench_cli.strategies import get_strategy

GREEDY = SamplingConfig(temperature=0.0)


def until_eos(tokens: list[int], eos: tuple[int, ...]) -> list[int]:
    for i, tok in enumerate(tokens):
        if tok in eos:
            return tokens[: i + 1]
    return tokens


def hf_batch(model: Any, group: list[list[int]], n: int, eos: tuple[int, ...]
             ) -> tuple[list[list[int]], float]:  # fmt: skip
    """`generate` on the left-padded group: each row's new tokens up to its EOS, wall time."""
    width = max(map(len, group))
    inp = torch.tensor([[eos[0]] * (width - len(ids)) + ids for ids in group])
    mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in group])
    start = time.perf_counter()
    out = model.generate(inp, attention_mask=mask, do_sample=False, max_new_tokens=n,
                         eos_token_id=list(eos), pad_token_id=eos[0])  # fmt: skip
    wall = time.perf_counter() - start
    return [until_eos(row[width:].tolist(), eos) for row in out], wall


def engine_batch(engine: Engine, group: list[list[int]], n: int
                 ) -> tuple[list[list[int]], float]:  # fmt: skip
    outputs: list[list[int]] = [[] for _ in group]
    start = time.perf_counter()
    for records in engine.generate_batch(group, n, list(range(len(group)))):
        for i, step in records.items():
            outputs[i] += step.tokens
    return outputs, time.perf_counter() - start


def run_round(contenders: dict[str, Any], model: Any, prompts: list[list[int]], size: int, n: int,
              eos: tuple[int, ...]) -> tuple[dict[str, float], dict[str, list]]:  # fmt: skip
    """Throughput per contender over all groups of one batch size, and every row's output."""
    tokens: dict[str, int] = dict.fromkeys(["generate", *contenders], 0)
    walls: dict[str, float] = dict.fromkeys(tokens, 0.0)
    outputs: dict[str, list] = {name: [] for name in tokens}
    for start in range(0, len(prompts), size):
        group = prompts[start : start + size]
        runs = {"generate": hf_batch(model.model, group, n, eos)}
        runs |= {name: engine_batch(e, group, n) for name, e in contenders.items()}
        for name, (out, wall) in runs.items():
            tokens[name] += sum(map(len, out))
            walls[name] += wall
            outputs[name] += out
    return {name: tokens[name] / walls[name] for name in tokens}, outputs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-sizes", default="1,2,4,8,16")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--per-suite", type=int, default=4, help="prompts per suite (4 suites)")
    ap.add_argument("--drafter", default="ngram", help="n-gram drafter spec")
    ap.add_argument("--strategy", action="append", help="strategies (default: greedy)")
    ap.add_argument("--k", type=int, default=4)
    args = ap.parse_args()
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    m, eos, prompts = default_model_and_prompts(args.per_suite)
    context = DraftContext(GREEDY, m.vocab_size)
    contenders = {"baseline": Engine(m.model, m.vocab_size, GREEDY, eos_ids=eos)}
    for spec in args.strategy or ["greedy"]:
        contenders[spec] = Engine(m.model, m.vocab_size, GREEDY, get_strategy(spec),
                                  build_drafter(args.drafter, context), args.k, eos)  # fmt: skip
    for size in sizes:  # warm-up at every batch shape
        run_round(contenders, m, prompts[:size], size, 4, eos)

    rates: dict[int, dict[str, list[float]]] = {s: {} for s in sizes}
    outputs: dict[int, dict[str, list]] = {}
    for r in range(args.rounds):
        for size in sizes:
            rate, outputs[size] = run_round(contenders, m, prompts, size, args.max_new_tokens, eos)
            for name, value in rate.items():
                rates[size].setdefault(name, []).append(value)
            print(f"round {r + 1} batch {size:2d}: "
                  + ", ".join(f"{k} {v:.1f} tok/s" for k, v in rate.items()), flush=True)
    report(rates, outputs, sizes, list(contenders), args, len(prompts))


def report(rates: dict[int, dict[str, list[float]]], outputs: dict[int, dict[str, list]],
           sizes: list[int], names: list[str], args: argparse.Namespace,
           prompts: int) -> None:  # fmt: skip
    def ratio(size: int, a: str, b: str, other: int | None = None) -> float:
        low = rates[other if other is not None else size][b]
        return statistics.median(x / y for x, y in zip(rates[size][a], low, strict=True))

    strategies = names[1:]
    print(f"\n{prompts} prompts, max_new_tokens {args.max_new_tokens}, greedy, k {args.k}, "
          f"drafter {args.drafter}, {args.rounds} round(s), torch threads "
          f"{torch.get_num_threads()}; tok/s = group tokens / group wall, median over rounds")
    head = f"{'batch':>5} {'generate':>9} {'baseline':>9} {'base/gen':>9} {'base/B1':>8}"
    head += "".join(f" {s[:12]:>12} {'speedup':>8} {'same':>5}" for s in strategies)
    print(head + f" {'base=gen':>8} {'base=B1':>8}")
    summary = []
    for size in sizes:
        med = {k: statistics.median(v) for k, v in rates[size].items()}
        out = outputs[size]
        line = (f"{size:>5} {med['generate']:>9.1f} {med['baseline']:>9.1f} "
                f"{ratio(size, 'baseline', 'generate'):>8.2f}x "
                f"{ratio(size, 'baseline', 'baseline', sizes[0]):>7.2f}x")
        row = {"batch_size": size, "generate_tps": med["generate"],
               "baseline_tps": med["baseline"]}
        for s in strategies:
            same = sum(a == b for a, b in zip(out[s], out["baseline"], strict=True))
            line += f" {med[s]:>12.1f} {ratio(size, s, 'baseline'):>7.2f}x {same:>2}/{prompts}"
            row[f"{s}_speedup"] = ratio(size, s, "baseline")
            row[f"{s}_identical_to_baseline"] = same
        base_gen = sum(a == b for a, b in zip(out["baseline"], out["generate"], strict=True))
        base_b1 = sum(a == b for a, b in zip(out["baseline"], outputs[sizes[0]]["baseline"],
                                             strict=True))  # fmt: skip
        print(line + f" {base_gen:>5}/{prompts} {base_b1:>5}/{prompts}")
        summary.append(row | {"baseline_identical_to_generate": base_gen,
                              "baseline_identical_to_batch1": base_b1})
    verdicts(rates, sizes, strategies)
    print(json.dumps(summary))


def verdicts(rates: dict[int, dict[str, list[float]]], sizes: list[int],
             strategies: list[str]) -> None:  # fmt: skip
    med = {s: {k: statistics.median(v) for k, v in rates[s].items()} for s in sizes}
    worst = min(med[s]["baseline"] / med[s]["generate"] for s in sizes)
    print(f"goal baseline >= 0.95x generate at every batch size: worst {worst:.2f}x "
          f"({'met' if worst >= 0.95 else 'NOT met'})")
    if 1 in med and 4 in med:
        gain = med[4]["baseline"] / med[1]["baseline"]
        print(f"goal baseline at batch 4 >= 2x batch 1: {gain:.2f}x "
              f"({'met' if gain >= 2 else 'NOT met'})")
    for s in strategies:
        pays = [b for b in sizes if med[b][s] > med[b]["baseline"]]
        # the smallest batch size from which every larger measured one loses
        stops = next((b for i, b in enumerate(sizes) if not set(sizes[i:]) & set(pays)), None)
        where = f"from batch {stops} on" if stops is not None else "at no measured batch size"
        print(f"{s}: faster than the baseline at batch {pays or 'none'}; stops paying {where}")


if __name__ == "__main__":
    main()
