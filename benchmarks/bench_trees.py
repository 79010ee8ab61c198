"""Chains vs token trees, side by side in one process: accepted tokens per step and speedup.

Part `pld` (the default model, greedy): the autoregressive baseline, chain prompt lookup, tree
prompt lookup with 1, 2 and 3 branches (`ngram:branches=B`, depth 4), and the suffix drafter (per
request tree only, `global=false`) as a chain and as trees of 1 and 3 branches
(`suffix:branches=B`) on the same prompts, interleaved per prompt and repeated. Every output
must equal the baseline's greedy output.

Part `tiny` (tiny random-weight Llamas, temperature 1): one draft model, drafting a chain of 4
for `sps` and `block` and trees of depth 4 for `specinfer`, `rrs` and `spectr` (2 branches, and a
one-branch tree as a control), with the same prompts and seeds for every contender. The draft is
the target with Gaussian noise added to every weight, so acceptance is neither 0 nor 1.

Accepted tokens per step (tokens emitted per target forward pass, prefill included) are
deterministic for a seed; their 95% intervals are paired bootstraps over prompts. Speedups are
wall-clock ratios from this run on a shared machine: read them as measured under that load.
The last line is one JSON document with every figure.

Run: .venv/bin/python benchmarks/bench_trees.py [--part pld|tiny|both] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from specbench_cli.bootstrap import paired_interval
from specbench_cli.drafters import DraftContext
from specbench_cli.drafters.draft_model_tree import DraftModelTreeDrafter
from specbench_cli.drafters.ngram import NgramDrafter
from specbench_cli.drafters.ngram_tree import NgramTreeDrafter
from specbench_cli.drafters.suffix import SuffixDrafter
from specbench_cli.engine import Engine
from specbench_cli.sampling import SamplingConfig
from specbench_cli.strategies import get_strategy
from specbench_cli.tree_engine import TreeEngine


@dataclass
class Tally:
    """Per-prompt sums of one contender over the rounds."""

    tokens: list[int] = field(default_factory=list)
    passes: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    depth_hits: np.ndarray = field(default_factory=lambda: np.zeros((2, 8)))  # reached, accepted


def decode(engine: Any, ids: list[int], n: int, seed: int, tally: Tally, prompt: int) -> list[int]:
    out, passes = [], 0
    start = time.perf_counter()
    for step in engine.generate(ids, n, seed):
        out += step.tokens
        passes += 1
        if not step.prefill:
            tally.depth_hits[0, : step.drafted] += 1
            tally.depth_hits[1, : step.accepted] += 1
    elapsed = time.perf_counter() - start
    while len(tally.tokens) <= prompt:
        tally.tokens.append(0)
        tally.passes.append(0)
        tally.seconds.append(0.0)
    tally.tokens[prompt] += len(out)
    tally.passes[prompt] += passes
    tally.seconds[prompt] += elapsed
    return out


def summarize(tallies: dict[str, Tally], baseline: str | None,
              reference: str | None = None) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Accepted tokens per step with its bootstrap interval; speedup against `baseline`; the
    paired difference in accepted tokens per step against `reference`."""
    base = tallies[baseline] if baseline is not None else None
    rows = {name: _row(t, base) for name, t in tallies.items()}
    if reference is not None:
        for name, t in tallies.items():
            rows[name]["vs_reference"] = _accepted_difference(t, tallies[reference])
    return rows


def _accepted_difference(t: Tally, ref: Tally) -> list[float]:
    """Accepted tokens per step of `t` minus `ref`'s, and its paired 95% interval."""
    tok, passes = np.array(t.tokens, dtype=float), np.array(t.passes, dtype=float)
    rtok, rpass = np.array(ref.tokens, dtype=float), np.array(ref.passes, dtype=float)

    def diff(i: np.ndarray) -> np.ndarray:
        return tok[i].sum(1) / passes[i].sum(1) - rtok[i].sum(1) / rpass[i].sum(1)

    return [tok.sum() / passes.sum() - rtok.sum() / rpass.sum(), *_interval(diff, len(tok))]


def _interval(statistic: Any, n: int, ratio: bool = False) -> tuple[float, float]:
    """The run's 95% interval (specbench_cli.bootstrap); NaN bounds below its minimum n."""
    interval = paired_interval(statistic, n, ratio=ratio)
    return (math.nan, math.nan) if interval is None else (interval.low, interval.high)


def _row(t: Tally, base: Tally | None) -> dict[str, Any]:
    tok, passes, secs = (np.array(x, dtype=float) for x in (t.tokens, t.passes, t.seconds))
    low, high = _interval(lambda i: tok[i].sum(1) / passes[i].sum(1), len(tok))
    row = {"accepted_per_step": tok.sum() / passes.sum(), "ci": [low, high],
           "tokens_per_s": tok.sum() / secs.sum(),
           "by_depth": [round(a / r, 3) for r, a in t.depth_hits.T if r]}  # fmt: skip
    if base is not None:
        btok, bsec = np.array(base.tokens, dtype=float), np.array(base.seconds)
        row["speedup"] = row["tokens_per_s"] / (btok.sum() / bsec.sum())
        row["speedup_ci"] = list(_interval(
            lambda i: (tok[i].sum(1) / secs[i].sum(1)) / (btok[i].sum(1) / bsec[i].sum(1)),
            len(tok), ratio=True))  # fmt: skip
    return row


def print_rows(title: str, rows: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(f"  {'contender':24s} {'acc. tokens/step':>17s} {'95% CI':>15s} {'speedup':>8s} "
          f"{'95% CI':>13s}  per-depth acceptance")  # fmt: skip
    for name, r in rows.items():
        speed = f"{r['speedup']:.2f}x" if "speedup" in r else "-"
        sci = "{:.2f}-{:.2f}".format(*r["speedup_ci"]) if "speedup_ci" in r else "-"
        delta = ("  vs sps {:+.3f} [{:+.3f}, {:+.3f}]".format(*r["vs_reference"])
                 if "vs_reference" in r else "")  # fmt: skip
        print(f"  {name:24s} {r['accepted_per_step']:17.3f} "
              f"{r['ci'][0]:7.3f}-{r['ci'][1]:.3f} {speed:>8s} {sci:>13s}  "
              f"{' '.join(f'{x:.2f}' for x in r['by_depth']) or '-'}{delta}")  # fmt: skip


def part_pld(args: argparse.Namespace) -> dict[str, Any]:
    from common import default_model_and_prompts

    m, eos, prompts = default_model_and_prompts(args.per_suite)
    greedy = SamplingConfig(temperature=0.0)
    rule = get_strategy("greedy")
    engines = {"baseline": Engine(m.model, m.vocab_size, greedy, eos_ids=eos),
               "chain ngram": Engine(m.model, m.vocab_size, greedy, rule, NgramDrafter(), 4, eos)}
    for b in (1, 2, 3):
        engines[f"tree ngram:branches={b}"] = TreeEngine(
            m.model, m.vocab_size, greedy, rule, NgramTreeDrafter(branches=b), 4, eos)
    # per-request trees only: a global tree would learn the prompts' outputs in round 1
    engines["chain suffix"] = Engine(m.model, m.vocab_size, greedy, rule,
                                     SuffixDrafter(**{"global": False}), 4, eos)  # fmt: skip
    for b in (1, 3):
        engines[f"tree suffix:branches={b}"] = TreeEngine(
            m.model, m.vocab_size, greedy, rule, SuffixDrafter(**{"global": False, "branches": b}),
            4, eos)  # fmt: skip
    for engine in engines.values():  # warm-up
        decode(engine, prompts[0], 8, 0, Tally(), 0)
    tallies = {name: Tally() for name in engines}
    mismatches = 0
    for _ in range(args.rounds):
        for i, ids in enumerate(prompts):
            ref = decode(engines["baseline"], ids, args.max_new_tokens, 0, tallies["baseline"], i)
            for name, engine in list(engines.items())[1:]:
                mismatches += decode(engine, ids, args.max_new_tokens, 0, tallies[name], i) != ref
    rows = summarize(tallies, "baseline")
    print_rows(f"default model, greedy, {len(prompts)} prompts x {args.rounds} rounds, "
               f"{args.max_new_tokens} new tokens, k/depth 4; outputs differing from the "
               f"baseline: {mismatches}", rows)  # fmt: skip
    return {"rows": rows, "mismatches": mismatches, "prompts": len(prompts)}


def tiny_pair(noise: float) -> tuple[Any, Any]:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         initializer_range=0.15, max_position_embeddings=256)  # fmt: skip
    torch.manual_seed(0)
    target = LlamaForCausalLM(config).eval()
    draft = LlamaForCausalLM(config).eval()
    draft.load_state_dict(target.state_dict())
    with torch.no_grad():
        for w in draft.parameters():
            w.add_(noise * w.std() * torch.randn_like(w))
    return target, draft


def part_tiny(args: argparse.Namespace) -> dict[str, Any]:
    target, draft = tiny_pair(args.draft_noise)
    sampling = SamplingConfig(temperature=1.0)
    ctx = DraftContext(sampling, 64, draft)
    tree = dict(branches=args.branches, depth=4, nodes=args.nodes)
    contenders = {
        "sps (chain 4)": lambda: Engine(target, 64, sampling, get_strategy("sps"),
                                        DraftModelTreeDrafter(ctx), 4),
        "block (chain 4)": lambda: Engine(target, 64, sampling, get_strategy("block"),
                                          DraftModelTreeDrafter(ctx), 4),
        "specinfer (1 branch)": lambda: TreeEngine(target, 64, sampling, get_strategy("specinfer"),
                                                   DraftModelTreeDrafter(ctx, depth=4), 4),
    }  # fmt: skip
    for rule in ("specinfer", "rrs", "spectr"):
        contenders[f"{rule} ({args.branches} branches)"] = (
            lambda rule=rule: TreeEngine(target, 64, sampling, get_strategy(rule),
                                         DraftModelTreeDrafter(ctx, **tree), 4))  # fmt: skip
    engines = {name: make() for name, make in contenders.items()}
    g = torch.Generator().manual_seed(123)
    prompts = [torch.randint(0, 64, (12,), generator=g).tolist() for _ in range(args.tiny_prompts)]
    tallies = {name: Tally() for name in engines}
    for i, ids in enumerate(prompts):
        for name, engine in engines.items():
            decode(engine, ids, args.max_new_tokens, seed=i, tally=tallies[name], prompt=i)
    rows = summarize(tallies, None, reference="sps (chain 4)")
    print_rows(f"tiny Llamas, T=1, draft = target + {args.draft_noise} x std noise, "
               f"{len(prompts)} prompts x {args.max_new_tokens} tokens, same seeds; trees: "
               f"{args.branches} branches, depth 4, nodes {args.nodes or 'all'}", rows)
    return {"rows": rows, "prompts": len(prompts)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("pld", "tiny", "both"), default="both")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--per-suite", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--tiny-prompts", type=int, default=48)
    ap.add_argument("--branches", type=int, default=2)
    ap.add_argument("--nodes", type=int, default=0)
    ap.add_argument("--draft-noise", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: OpenMP spin-waits cost most on a shared machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {"torch_threads": torch.get_num_threads()}
    if args.part in ("pld", "both"):
        report["pld"] = part_pld(args)
    if args.part in ("tiny", "both"):
        report["tiny"] = part_tiny(args)
    print(json.dumps(report, default=float))


if __name__ == "__main__":
    main()
