"""A decoding step's forward pass on the CPU: `F.linear` vs the few-row `W @ x^T`.

Default model, one prompt's first 150 tokens in the KV cache, then a forward over the pending
token plus d drafted tokens (d = 0 is a plain decoding step), the cache cut back after each, d
interleaved, `--reps` times, with torch's `F.linear` in every linear layer and then with
`specbench_cli.cpu_matmul` (`W @ x^T` for 1-16 rows, one row padded to two). Prints the median
time per forward and its ratio to the same variant's plain step, per d, for both, the ratio of
the two per d, and the largest logit difference between them.

Run: .venv/bin/python benchmarks/bench_cpu_matmul.py [--reps 10] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import default_model_and_prompts

from specbench_cli.cpu_matmul import FewRowLinear
from specbench_cli.kvcache import cache_argument

DRAFTED = (0, 1, 2, 3, 4, 7, 15)


def forward_times(model: torch.nn.Module, prompt: torch.Tensor, reps: int
                  ) -> tuple[dict[int, float], torch.Tensor]:  # fmt: skip
    """(median seconds per forward by drafted count, logits of the d=4 forward)."""
    arg = cache_argument(model)
    with torch.inference_mode():
        cache = model(prompt, use_cache=True).past_key_values
        times: dict[int, list[float]] = {d: [] for d in DRAFTED}
        logits = torch.empty(0)
        for _ in range(reps):
            for d in DRAFTED:
                ids = torch.arange(100, 101 + d)[None]
                t0 = time.perf_counter()
                out = model(ids, use_cache=True, **{arg: cache})
                times[d].append(time.perf_counter() - t0)
                cache.crop(-(d + 1))
                if d == 4:
                    logits = out.logits
    return {d: statistics.median(t) for d, t in times.items()}, logits


def set_linear(model: torch.nn.Module, cls: type) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.__class__ = cls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    m, _, ids_list = default_model_and_prompts(1)
    prompt = torch.tensor([ids_list[0][:150]])
    print(f"default model, {prompt.shape[1]}-token context, {torch.get_num_threads()} threads, "
          f"median of {args.reps} forwards per drafted count")
    results = {}
    for name, cls in (("F.linear", torch.nn.Linear), ("W@x^T", FewRowLinear)):
        set_linear(m.model, cls)
        results[name] = forward_times(m.model, prompt, args.reps)
    for name, (times, _) in results.items():
        cells = "  ".join(f"d={d}: {1000 * t:5.1f} ms ({t / times[0]:.2f}x)"
                          for d, t in times.items())  # fmt: skip
        print(f"{name:9s} {cells}")
    linear, few = results["F.linear"][0], results["W@x^T"][0]
    print("F.linear / W@x^T per forward: "
          + "  ".join(f"d={d}: {linear[d] / few[d]:.2f}x" for d in DRAFTED))
    diff = (results["F.linear"][1] - results["W@x^T"][1]).abs().max().item()
    print(f"largest logit difference at d=4: {diff:.2e}")


if __name__ == "__main__":
    main()
