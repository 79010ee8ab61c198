"""Run-to-run reproducibility of the greedy speedup, with and without repeated rounds.

Runs the same configuration (default suite and model, `--temperature 0 --strategy greedy
--max-new-tokens 64`) `--runs` times with `--rounds 1` and `--runs` times with the default
rounds, as separate `specbench run` processes, interleaved (1, default, 1, default, ...) so both
settings see the same machine. Prints each run's greedy speedup, tokens/s, accepted tokens per
step and stated timing noise, then per setting the spread of the speedup: (max - min) / mean.

Goal: at the default rounds, three identical runs within 3% of each other on a quiet machine.
Timings on a busy machine measure the machine: check the load averages printed with each run.

Run: .venv/bin/python benchmarks/bench_reproducibility.py [--runs 3] [--limit N]
     [--max-new-tokens 64] [--rounds R] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from specbench_cli.config import RunConfig

RUN = ["--suite", "default", "--target", "default", "--temperature", "0", "--strategy", "greedy"]


def one_run(folder: Path, rounds: int, args: argparse.Namespace) -> dict:
    """One `specbench run` process; the figures of its greedy row and its machine state."""
    extra = ["--limit", str(args.limit)] if args.limit else []
    cmd = [sys.executable, "-m", "specbench_cli", "run", *RUN, "--max-new-tokens",
           str(args.max_new_tokens), "--rounds", str(rounds), "--output", str(folder), *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    data = json.loads((folder / "results.json").read_text())
    row = next(r for r in data["results"] if r["strategy"] == "greedy")
    env = data["environment"]
    return {"speedup": row["speedup"], "tok_s": row["tokens_per_second"],
            "tok_step": row["mean_accepted_tokens"],
            "noise": (data.get("timing_noise") or {}).get("overall"),
            "load": [env.get(f"machine_{when}", {}).get("load_average", [None])[0]
                     for when in ("start", "end")]}  # fmt: skip


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.mean(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per setting")
    ap.add_argument("--rounds", type=int, default=RunConfig.rounds,
                    help="rounds of the repeated setting (default: the run default)")
    ap.add_argument("--limit", type=int, default=None, help="prompts of the suite (all)")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--keep", type=Path, default=None, help="keep the run folders here")
    args = ap.parse_args()
    settings = dict.fromkeys((1, args.rounds))
    found: dict[int, list[dict]] = {r: [] for r in settings}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for i in range(args.runs):
            for rounds in settings:
                result = one_run(root / f"rounds{rounds}-run{i + 1}", rounds, args)
                found[rounds].append(result)
                noise = "-" if result["noise"] is None else f"{100 * result['noise']:.1f}%"
                load = " -> ".join(f"{x:.2f}" for x in result["load"] if x is not None)
                print(f"rounds={rounds} run {i + 1}: greedy speedup {result['speedup']:.3f}, "
                      f"{result['tok_s']:.2f} tok/s, {result['tok_step']:.2f} tok/step, "
                      f"timing noise {noise}, load {load}", flush=True)  # fmt: skip
    print()
    for rounds, results in found.items():
        speedups = [r["speedup"] for r in results]
        print(f"rounds={rounds}: speedups {', '.join(f'{s:.3f}' for s in speedups)}; "
              f"spread (max - min) / mean {100 * spread(speedups):.1f}%")


if __name__ == "__main__":
    main()
