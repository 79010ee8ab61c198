"""Model-free drafters side by side: transformers vs specbench prompt lookup vs suffix drafting.

On the default model, greedy, in one process, interleaved per prompt (every contender runs a
prompt before the next prompt starts), repeated for several rounds:
  - transformers `generate` and `generate(prompt_lookup_num_tokens=k)` on the model as specbench
    loads it (its CPU linear layers and attention, so every contender runs the same forward pass)
  - transformers' prompt lookup on a second copy of the model as transformers ships it
    (`F.linear`, transformers' `sdpa` attention: `hf_pld_stock`), what a user of transformers gets
  - specbench's autoregressive baseline; prompt lookup (`ngram`) with a fixed draft length and
    with the `heuristic` draft length; `suffix` with the per-request tree only
    (`suffix:global=false`) and with the global tree of earlier outputs (`suffix`), and the
    latter's token trees of up to 3 branches on the tree engine (`suffix:branches=3`)
over the bundled summarization, rag, code and chat suites (first turns) plus a repeated-request
set (the same prompts twice, the case the global tree is for). Every suite starts with fresh
drafters, so the global tree holds only outputs of the same suite's earlier prompts in the same
round; suites do not help each other and rounds do not help each other.

Prints, per suite and overall (the bundled suites run): median tokens/s over rounds, speed
ratios (the median over rounds of per-round ratios: both sides ran in the same round), the
same for the decode phase alone (specbench contenders; prefill excluded) with the prefill's
share of the baseline's time, mean accepted tokens per step (new tokens / target forward
passes, prefill included), the drafter's own time per step, the goals' verdicts, and how many
outputs differ from `generate`'s greedy output (must be 0; the stock copy's float sums run in
another order, so its count is reported apart, for information).

Goals: suffix >= 1.3x transformers' prompt lookup overall; suffix >= 1.5x specbench's baseline
on summarization and on rag; greedy outputs identical to the baseline everywhere. The verdicts
are printed for the chain drafter (the goals as set) and for its 3-branch trees, and the goal
against transformers twice: on the same forward pass (the drafters and loops alone) and against
transformers as shipped.

Also prints the target's forward time by input width (1 pending token + d drafts), the cost a
draft must earn back, and the benchmark's own run time. The defaults (3 rounds, 6 prompts per
suite, 2 repeated prompts, 48 new tokens) take 14-17 minutes on the 2-core machine.

`--suites` and `--contenders` run a subset (overall then means the suites run; goals whose
contenders or suites did not run are not printed), e.g. the whole rag and summarization suites:
`--suites summarization,rag --per-suite 30 --repeated 0 --contenders hf_pld,sb_suffix`.

Run: .venv/bin/python benchmarks/bench_drafters.py [--rounds 3] [--per-suite 6] [--k 4]
     [--max-new-tokens 48] [--suites S,..] [--contenders C,..] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from unittest import mock

import torch
from common import load_default_model, suite_prompts

from specbench_cli.drafters import DraftContext, build_drafter
from specbench_cli.drafters.draft_length import with_draft_length
from specbench_cli.engine import Engine
from specbench_cli.models import check_spec, load_model
from specbench_cli.ragged_cache import RaggedCache
from specbench_cli.sampling import SamplingConfig
from specbench_cli.strategies import get_strategy
from specbench_cli.tree_engine import TreeEngine

SUITES = ("summarization", "rag", "code", "chat")
REPEATED = "repeated"
OVERALL = "overall"
HF = ("hf_generate", "hf_pld", "hf_pld_stock")
DRAFTED = {  # specbench contender -> (drafter spec, draft length; "tree": the tree engine)
    "sb_pld": ("ngram", "fixed"),
    "sb_pld_heuristic": ("ngram", "heuristic"),
    "sb_suffix_local": ("suffix:global=false", "fixed"),
    "sb_suffix": ("suffix", "fixed"),
    "sb_suffix_tree3": ("suffix:branches=3", "tree"),
}
CONTENDERS = (*HF, "sb_baseline", *DRAFTED)
GREEDY = SamplingConfig(temperature=0.0)
SWITCHES = ("SPECBENCH_CPU_MATMUL", "SPECBENCH_CPU_ATTENTION")  # off: transformers' own layers


@dataclass
class Tally:
    tokens: int = 0
    seconds: float = 0.0
    forwards: int = 0  # target forward passes, prefill included
    steps: int = 0  # decoding steps after the prefill
    draft_s: float = 0.0  # time inside the drafter
    prefill_s: float = 0.0  # specbench contenders: the prefill steps (forward + first token)
    draft_max_s: float = 0.0  # the slowest single proposal

    def add(self, other: Tally) -> None:
        for key, value in asdict(other).items():
            merged = max if key == "draft_max_s" else (lambda a, b: a + b)
            setattr(self, key, merged(getattr(self, key), value))


class ForwardCounter:
    """Counts the target's forward passes (transformers runs them inside `generate`)."""

    def __init__(self, model) -> None:
        self.calls = 0
        model.register_forward_pre_hook(self._count)

    def _count(self, module, args) -> None:
        self.calls += 1


@contextmanager
def timed_prompt_lookup(tally: list[float]) -> Iterator[None]:
    """Time transformers' prompt-lookup candidate generator (the benchmark's own probe)."""
    from transformers.generation.candidate_generator import PromptLookupCandidateGenerator as G

    original = G.get_candidates

    def get_candidates(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            tally.append(time.perf_counter() - start)

    G.get_candidates = get_candidates
    try:
        yield
    finally:
        G.get_candidates = original


def hf_run(model, counter: ForwardCounter, ids: list[int], n: int, eos: tuple[int, ...],
           k: int | None) -> tuple[list[int], Tally]:  # fmt: skip
    inp = torch.tensor([ids])
    extra = {} if k is None else {"prompt_lookup_num_tokens": k}
    calls, probes = counter.calls, []
    with timed_prompt_lookup(probes):
        start = time.perf_counter()
        out = model.generate(inp, attention_mask=torch.ones_like(inp), do_sample=False,
                             max_new_tokens=n, eos_token_id=list(eos), pad_token_id=eos[0],
                             **extra)  # fmt: skip
        seconds = time.perf_counter() - start
    tokens = out[0, len(ids):].tolist()
    forwards = counter.calls - calls
    # prompt lookup proposes before every pass, the first included (which also reads the prompt)
    steps = len(probes) if k is not None else forwards - 1
    return tokens, Tally(len(tokens), seconds, forwards, steps, draft_s=sum(probes),
                         draft_max_s=max(probes, default=0.0))  # fmt: skip


def engine_run(engine: Engine, ids: list[int], n: int) -> tuple[list[int], Tally]:
    tokens: list[int] = []
    tally = Tally()
    start = time.perf_counter()
    for step in engine.generate(ids, n, seed=0):
        tokens += step.tokens
        tally.forwards += 1
        if step.prefill:
            tally.prefill_s += step.step_s
        else:
            tally.steps += 1
            tally.draft_s += step.draft_s
            tally.draft_max_s = max(tally.draft_max_s, step.draft_s)
    tally.seconds = time.perf_counter() - start
    tally.tokens = len(tokens)
    return tokens, tally


def load_stock_model():
    """The default model as transformers loads it: specbench's CPU linear layers and attention
    switched off while it loads."""
    with mock.patch.dict(os.environ, dict.fromkeys(SWITCHES, "off")):  # restored on exit
        return load_model(check_spec("default")).model


def make_runners(m, stock, counters: dict, eos: tuple[int, ...], k: int,
                 n: int) -> dict[str, Callable]:  # fmt: skip
    """One runner per contender, with fresh drafters (an empty global tree)."""
    counter = counters["loaded"]
    runners: dict[str, Callable] = {
        "hf_generate": lambda ids: hf_run(m.model, counter, ids, n, eos, None),
        "hf_pld": lambda ids: hf_run(m.model, counter, ids, n, eos, k),
        "hf_pld_stock": lambda ids: hf_run(stock, counters.get("stock"), ids, n, eos, k),
    }
    engines = {"sb_baseline": Engine(m.model, m.vocab_size, GREEDY, eos_ids=eos)}
    for name, (spec, length) in DRAFTED.items():
        drafter = build_drafter(spec, DraftContext(GREEDY, m.vocab_size))
        if length == "tree":
            engines[name] = TreeEngine(m.model, m.vocab_size, GREEDY, get_strategy("greedy"),
                                       drafter, k, eos)  # fmt: skip
            continue
        engines[name] = Engine(m.model, m.vocab_size, GREEDY, get_strategy("greedy"),
                               with_draft_length(drafter, length, k), k, eos)  # fmt: skip
    for name, engine in engines.items():
        runners[name] = lambda ids, engine=engine: engine_run(engine, ids, n)
    return runners


def run_round(m, stock, counters, eos, prompts: dict[str, list[list[int]]], args,
              mismatches: dict, outputs: list) -> dict[str, dict[str, Tally]]:  # fmt: skip
    """Every suite, every prompt, every contender back to back; tallies per suite. The greedy
    outputs (prompt, tokens) go to `outputs`."""
    tallies: dict[str, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
    for suite, suite_ids in prompts.items():
        runners = make_runners(m, stock, counters, eos, args.k, args.max_new_tokens)
        for ids in suite_ids:
            reference = None
            for name in args.contenders:
                tokens, tally = runners[name](ids)
                if reference is None:
                    reference = tokens
                    outputs.append((ids, tokens))
                mismatches[name] += tokens != reference
                tallies[suite][name].add(tally)
                if suite != REPEATED:
                    tallies[OVERALL][name].add(tally)
        print(f"  {suite}: " + ", ".join(f"{c} {t.tokens / t.seconds:.1f}"
                                         for c, t in tallies[suite].items()) + " tok/s", flush=True)
    return tallies


def replay_cost(outputs: list, k: int) -> None:
    """The drafters alone, without a model: replay each greedy output as the target's answer
    (a step accepts the longest common prefix of the draft and the output, then one token) and
    time every proposal. The first proposal of a sequence builds the per-request state."""
    print("\ndrafter time alone, replayed on the greedy outputs (us per proposal)")
    print(f"  {'':22s}{'first':>9s}{'mean':>9s}{'p50':>9s}{'p99':>9s}{'max':>9s}"
          f"{'tokens/step':>13s}")
    for spec in ("ngram", "suffix:global=false", "suffix"):
        drafter = build_drafter(spec, DraftContext(GREEDY, 0))
        first, later, steps, tokens = [], [], 0, 0
        for prompt, output in outputs:
            drafter.reset(0)
            context, done = prompt + output[:1], 1
            while done < len(output):
                start = time.perf_counter()
                draft = drafter.propose(context, min(k, len(output) - done - 1))
                (later if len(context) > len(prompt) + 1 else first).append(
                    time.perf_counter() - start)
                kept = 0
                while kept < len(draft.tokens) and draft.tokens[kept] == output[done + kept]:
                    kept += 1
                drafter.observe(kept)
                context += output[done : done + kept + 1]
                done += kept + 1
                steps += 1
            tokens += len(output) - 1
        later.sort()
        us = [1e6 * x for x in (statistics.mean(first), statistics.mean(later),
                                later[len(later) // 2], later[int(0.99 * len(later))], later[-1])]
        print(f"  {spec:22s}" + "".join(f"{x:9.1f}" for x in us) + f"{tokens / steps:13.2f}")


def forward_cost(m, prompt: list[int], k: int, reps: int = 9) -> None:
    """The target's forward time by width (the pending token + d drafts, d = 0..k) on top of a
    prompt's KV cache, widths interleaved, medians: what a drafted step costs over a plain one
    (width 1 asks for the last logits only, as the engine's undrafted step does)."""
    cache = RaggedCache(m.model, 1)
    times: dict[int, list[float]] = defaultdict(list)
    with torch.inference_mode():
        cache.forward([prompt], right_align=True, last_only=True)
        for rep in range(reps):
            for d in range(k + 1) if rep % 2 else range(k, -1, -1):
                start = time.perf_counter()
                cache.forward([prompt[-1 - d :]], last_only=d == 0)
                times[d].append(time.perf_counter() - start)
                cache.truncate([len(prompt)])
    plain = statistics.median(times[0])
    print(f"\ntarget forward over a {len(prompt)}-token context, by drafted tokens d "
          f"(median of {reps}; ratio to d = 0)")
    print("  " + "  ".join(f"d={d}: {1000 * statistics.median(times[d]):.1f} ms "
                           f"({statistics.median(times[d]) / plain:.2f})" for d in sorted(times)))


def median_ratio(rounds, suite: str, a: str, b: str) -> float:
    def rate(t: Tally) -> float:
        return t.tokens / t.seconds

    return statistics.median(rate(r[suite][a]) / rate(r[suite][b]) for r in rounds)


def decode_rate(t: Tally) -> float:
    """Tokens after the first per second after the prefill (the part drafting can speed up)."""
    return (t.tokens - (t.forwards - t.steps)) / (t.seconds - t.prefill_s)


def columns(args) -> list[str]:
    return [*args.suites, OVERALL] + ([REPEATED] if args.repeated else [])


def print_table(title: str, rounds, cell: Callable[[list, str, str], str], args) -> None:
    print(f"\n{title}")
    print(f"  {'':18s}" + "".join(f"{c:>15s}" for c in columns(args)))
    for name in args.contenders:
        print(f"  {name:18s}" + "".join(f"{cell(rounds, s, name):>15s}" for s in columns(args)))


def report(rounds, mismatches: dict[str, int], args) -> dict:
    last = rounds[-1]  # greedy: token counts and steps are identical in every round
    print_table("median tokens/s", rounds, lambda rs, s, c: "%.2f" % statistics.median(
        r[s][c].tokens / r[s][c].seconds for r in rs), args)
    print_table("speed vs specbench baseline (median of per-round ratios)", rounds,
                lambda rs, s, c: "%.2fx" % median_ratio(rs, s, c, "sb_baseline"), args)
    if "hf_pld" in args.contenders:
        print_table("speed vs transformers prompt lookup", rounds,
                    lambda rs, s, c: "%.2fx" % median_ratio(rs, s, c, "hf_pld"), args)
    print_table("decode phase only: speed vs specbench baseline, prefill excluded", rounds,
                lambda rs, s, c: "-" if c in HF else "%.2fx" % statistics.median(
                    decode_rate(r[s][c]) / decode_rate(r[s]["sb_baseline"]) for r in rs), args)

    def prefill_share(suite: str) -> float:
        return statistics.median(r[suite]["sb_baseline"].prefill_s / r[suite]["sb_baseline"].seconds
                                 for r in rounds)  # fmt: skip

    print("  prefill share of the baseline's time (no drafter speeds it up): " + ", ".join(
        f"{s} {prefill_share(s):.0%}" for s in columns(args)))
    print_table("mean accepted tokens per step (new tokens / target forward passes)", rounds,
                lambda rs, s, c: "%.2f" % (last[s][c].tokens / last[s][c].forwards), args)
    print_table("drafter ms per step: mean / max (all rounds)", rounds, lambda rs, s, c: (
        "-" if c in ("hf_generate", "sb_baseline") else "%.3f / %.1f" % (
            1000 * sum(r[s][c].draft_s for r in rs) / sum(r[s][c].steps for r in rs),
            1000 * max(r[s][c].draft_max_s for r in rs))), args)
    goals = {}  # the goals as set, for the chain drafter, then the same for its trees; those
    # whose contenders and suites ran
    for label, name in (("suffix", "sb_suffix"), ("suffix trees (3 branches)", "sb_suffix_tree3")):
        for how, hf in (("same forward", "hf_pld"), ("as shipped", "hf_pld_stock")):
            if {name, hf} <= set(args.contenders):
                goals[f"{label} >= 1.3x transformers prompt lookup overall, {how}"] = (
                    median_ratio(rounds, OVERALL, name, hf), 1.3)
        for suite in ("summarization", "rag"):
            if name in args.contenders and suite in args.suites:
                goals[f"{label} >= 1.5x specbench baseline on {suite}"] = (
                    median_ratio(rounds, suite, name, "sb_baseline"), 1.5)
    print(f"\ngoals ({args.rounds} rounds, {args.per_suite} prompts per suite, k {args.k}, "
          f"max_new_tokens {args.max_new_tokens}, greedy, torch threads "
          f"{torch.get_num_threads()}):")
    for goal, (value, target) in goals.items():
        print(f"  {goal:84s} {value:.3f}x  {'MET' if value >= target else 'NOT MET'}")
    same_model = {c: n for c, n in mismatches.items() if c != "hf_pld_stock"}
    different = sum(same_model.values())
    print(f"  outputs identical to generate's greedy output: "
          f"{'MET' if different == 0 else 'NOT MET'} ({different} differ: {same_model})")
    if "hf_pld_stock" in mismatches:
        print(f"  (transformers as shipped, another float summation order: "
              f"{mismatches['hf_pld_stock']} outputs differ from the loaded model's)")
    return {"goals": {g: v for g, (v, _) in goals.items()}, "mismatches": dict(mismatches)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-suite", type=int, default=6, help="prompts per bundled suite")
    ap.add_argument("--repeated", type=int, default=2, help="prompts in the repeated set")
    ap.add_argument("--k", type=int, default=4, help="draft tokens per step (all drafters)")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--suites", default=",".join(SUITES), help="bundled suites, comma-separated")
    ap.add_argument("--contenders", default=",".join(CONTENDERS),
                    help=f"comma-separated, of {', '.join(CONTENDERS)} "
                         f"(hf_generate and sb_baseline always run)")  # fmt: skip
    ap.add_argument("--json", help="also write the medians and verdicts to this file")
    args = ap.parse_args()
    args.suites = tuple(s for s in args.suites.split(",") if s)
    chosen = set(args.contenders.split(",")) | {"hf_generate", "sb_baseline"}
    if unknown := chosen - set(CONTENDERS):
        ap.error(f"unknown contenders: {', '.join(sorted(unknown))}")
    args.contenders = tuple(c for c in CONTENDERS if c in chosen)  # generate first: the reference
    started = time.perf_counter()
    m, eos = load_default_model()
    prompts = suite_prompts(m, args.suites, args.per_suite)
    # round robin over the suites' prompts, then the same prompts again
    repeated = [prompts[s][i] for i in range(args.per_suite) for s in args.suites][: args.repeated]
    if repeated:
        prompts[REPEATED] = repeated + repeated
    stock = load_stock_model() if "hf_pld_stock" in args.contenders else None
    counters = {"loaded": ForwardCounter(m.model)}
    if stock is not None:
        counters["stock"] = ForwardCounter(stock)
    warm = make_runners(m, stock, counters, eos, args.k, 8)
    for name in args.contenders:  # untimed: allocator, lazy initialisation
        warm[name](prompts[args.suites[0]][0])
    mismatches: dict[str, int] = dict.fromkeys(args.contenders, 0)
    rounds, outputs = [], []
    for r in range(args.rounds):
        rounds.append(run_round(m, stock, counters, eos, prompts, args, mismatches,
                                outputs if r == 0 else []))  # fmt: skip
        print(f"round {r + 1} done: overall " + ", ".join(
            f"{c} {rounds[-1][OVERALL][c].tokens / rounds[-1][OVERALL][c].seconds:.1f}"
            for c in args.contenders) + " tok/s", flush=True)
    summary = report(rounds, mismatches, args)
    replay_cost(outputs, args.k)
    forward_cost(m, prompts[args.suites[0]][0], args.k)
    print(f"\nbenchmark run time {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**summary, "rounds": [{s: {c: asdict(t) for c, t in r[s].items()}
                                              for s in r} for r in rounds],
                       "settings": vars(args)}, f, indent=1)


if __name__ == "__main__":
    main()
