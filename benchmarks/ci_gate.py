"""The project's own regression gate: a small deterministic benchmark on tiny models, compared
with the results committed under benchmarks/baselines/tiny/ by `specbench compare`.

Accepted tokens per step and acceptance rates under a fixed seed on CPU are exact counts, so they
are gated at 0%: any change in engine, drafter or strategy semantics fails CI until the baseline
is deliberately refreshed with `--update` (and the diff reviewed). The divergence is a float sum
over model outputs, and different CPU models round the tiny models' matrix products differently
(measured: up to 4e-8 relative); it is gated at 0.001%, far above that rounding and far below
any real change. Wall-clock figures are shown but not gated: CI machines are shared and noisy.

Run: .venv/bin/python benchmarks/ci_gate.py [--update]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from specbench_cli.tiny import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "benchmarks" / "baselines" / "tiny"
MODELS = Path(".cache") / "ci-gate"  # relative, so the recorded model paths match across clones
RUN = ["--target", str(MODELS / "target"), "--draft", str(MODELS / "draft"),
       "--suite", "default", "--max-new-tokens", "32", "--k", "3", "--seed", "0",
       "--temperature", "1.0", "--strategy", "sps", "--strategy", "cactus:delta=0.5",
       "--strategy", "tas", "--strategy", "topk", "--strategy", "interp"]
GATES = ["--threshold", "mean_accepted_tokens=0%", "--threshold", "acceptance_rate=0%",
         "--threshold", "divergence.kl=0.001%"]


def specbench(*args: str) -> int:
    return subprocess.call([sys.executable, "-m", "specbench_cli", *args], cwd=REPO)


def main() -> int:
    ap = argparse.ArgumentParser(description="deterministic regression gate on tiny models")
    ap.add_argument("--update", action="store_true", help="refresh the committed baseline")
    args = ap.parse_args()
    if not (REPO / MODELS / "target" / "config.json").is_file():
        build_tiny_model(REPO / MODELS / "target", seed=0)
        build_tiny_model(REPO / MODELS / "draft", seed=1, layers=1, hidden=16)
    out = REPO / "runs" / f"ci-gate-{datetime.now():%Y%m%d-%H%M%S}"
    rc = specbench("run", *RUN, "--output", str(out))
    if rc:
        return rc
    if args.update:
        shutil.rmtree(BASELINE, ignore_errors=True)
        BASELINE.mkdir(parents=True)
        for name in ("results.json", "records.jsonl"):
            shutil.copy(out / name, BASELINE / name)
        print(f"baseline refreshed in {BASELINE.relative_to(REPO)}")
        return 0
    return specbench("compare", str(BASELINE), str(out), *GATES)


if __name__ == "__main__":
    sys.exit(main())
