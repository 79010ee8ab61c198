"""A decoding step's forward pass on the CPU: `F.linear` vs `W @ x^T` vs the few-row kernel.

Default model, one prompt's first 150 tokens in the KV cache, then a forward over the pending
token plus d drafted tokens (d = 0 is a plain decoding step), the cache cut back after each, d
interleaved, `--reps` times, with each variant in every linear layer: torch's `F.linear`,
`cpu_matmul.mm_rows` (`W @ x^T` for 1-16 rows, one row padded to two: the fallback) and
`cpu_matmul.FewRowLinear` on the extension's few-row kernel (what models load with). Prints the
median time per forward and its ratio to the same variant's plain step, per d, the speed of the
kernel over the other two per d, and the largest logit difference to `F.linear`.

Run: .venv/bin/python benchmarks/bench_cpu_matmul.py [--reps 10] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import default_model_and_prompts

from specbench_cli import cpu_matmul
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


class MmLinear(torch.nn.Linear):
    """The fallback path alone: `W @ x^T` for 1-16 rows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if rows > cpu_matmul.MAX_ROWS:
            return torch.nn.functional.linear(x, self.weight, self.bias)
        y = cpu_matmul.mm_rows(x.reshape(rows, x.shape[-1]), self.weight, self.bias)
        return y.reshape(*x.shape[:-1], y.shape[-1])


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
    if cpu_matmul.kernel() is None:
        raise SystemExit("the few-row kernel could not be built (see the warning above)")
    variants = {"F.linear": torch.nn.Linear, "W@x^T": MmLinear, "kernel": FewRowLinear}
    results = {}
    for name, cls in variants.items():
        set_linear(m.model, cls)
        results[name] = forward_times(m.model, prompt, args.reps)
    for name, (times, _) in results.items():
        cells = "  ".join(f"d={d}: {1000 * t:5.1f} ms ({t / times[0]:.2f}x)"
                          for d, t in times.items())  # fmt: skip
        print(f"{name:9s} {cells}")
    kernel = results["kernel"][0]
    for other in ("F.linear", "W@x^T"):
        print(f"{other} / kernel per forward: " + "  ".join(
            f"d={d}: {results[other][0][d] / kernel[d]:.2f}x" for d in DRAFTED))
    for other in ("W@x^T", "kernel"):
        diff = (results["F.linear"][1] - results[other][1]).abs().max().item()
        print(f"largest logit difference to F.linear at d=4, {other}: {diff:.2e}")

if __name__ == "__main__":
    main()
