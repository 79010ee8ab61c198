"""A serving engine's speculation at rising load: llama.cpp `llama-server` on this machine.

Starts two llama-servers on the default model's GGUF file, one with n-gram speculation and one
without, runs `specbench run --server ... --baseline-server ...` at each concurrency, and prints
side by side the paired speedup (with its 95% interval), the acceptance the server reported and
the latency percentiles. The same run is what the serving tests check; this script is the
on-demand version with more prompts and load levels.

Run: .venv/bin/python benchmarks/bench_serving.py [--suite default] [--limit 6]
     [--concurrency 1 2 4] [--max-new-tokens 96] [--spec "--spec-type ngram-simple ..."]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from specbench_cli.models import default_gguf_path
from specbench_cli.serving.local_server import LlamaServer, find_llama_server

SPEC = ("--spec-type ngram-simple --spec-ngram-simple-size-n 3 --spec-ngram-simple-size-m 8")
COMMON = ["-c", "8192", "-np", "4"]


def served_run(args: argparse.Namespace, spec: str, base: str, concurrency: int, out: Path) -> dict:
    cmd = [sys.executable, "-m", "specbench_cli", "run", "--server", spec, "--baseline-server",
           base, "--engine", "llamacpp", "--suite", args.suite, "--limit", str(args.limit),
           "--max-new-tokens", str(args.max_new_tokens), "--temperature", "0",
           "--concurrency", str(concurrency), "--output", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"specbench run failed ({done.returncode}): {done.stderr.strip()}")
    return json.loads((out / "results.json").read_text())


def report(concurrency: int, data: dict) -> str:
    row = next(r for r in data["results"] if r["strategy"] == "llamacpp" and not r["category"])
    low, high = row["speedup_ci"] or [float("nan")] * 2
    lat = row["latency"]
    return (f"{concurrency:>11} {row['speedup']:>7.2f}x [{low:.2f}, {high:.2f}] "
            f"{row['mean_accepted_tokens']:>9.2f} {row['acceptance_rate']:>7.1%} "
            f"{lat['ttft_s']['p50']:>9.3f} {lat['tpot_s']['p50'] * 1000:>9.1f} "
            f"{lat['e2e_s']['p90']:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="default")
    parser.add_argument("--limit", type=int, default=6)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--spec", default=SPEC, help="llama-server flags that turn speculation on")
    args = parser.parse_args()
    if isinstance(found := find_llama_server(), str):
        sys.exit(found)
    gguf = default_gguf_path()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with LlamaServer(gguf, folder / "spec.log", [*shlex.split(args.spec), *COMMON]) as spec, \
                LlamaServer(gguf, folder / "base.log", COMMON) as base:
            print(f"llama-server {found[0]}\nspeculation: {args.spec}\n"
                  f"{args.suite} x {args.limit} prompts, {args.max_new_tokens} new tokens, greedy")
            print("concurrency speedup [95% CI]  mean acc.  accept  TTFT p50  TPOT ms  e2e p90")
            for n in args.concurrency:
                data = served_run(args, spec.url, base.url, n, folder / f"c{n}")
                print(report(n, data), flush=True)


if __name__ == "__main__":
    main()
