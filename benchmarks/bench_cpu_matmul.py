"""Decoding steps and a prefill on the CPU: `F.linear` vs `W @ x^T` vs the kernel + oneDNN, and
transformers' attention vs `gqa_sdpa`.

Default model, one prompt's first 150 tokens prefilled into the KV cache (timed: the prefill),
then a forward over the pending token plus d drafted tokens (d = 0 is a plain decoding step), the
cache cut back after each. Variants, interleaved in a new random order in each of `--reps`
repetitions:
- every linear layer on torch's `F.linear`; on `cpu_matmul.mm_rows` (`W @ x^T` for 1-16 rows, one
  row padded to two: the fallback) with `F.linear` beyond; on `cpu_matmul.CpuLinear` (the
  extension's few-row kernel up to `KERNEL_ROWS` rows, oneDNN beyond); all three with
  transformers' `sdpa` attention;
- `CpuLinear` with `cpu_attention.gqa_sdpa`: what models load with.
Prints the median time per forward and its ratio to the same variant's plain step, per d, the
prefill's median time, the speed of what models load with over each other variant, and the
largest logit difference to `F.linear`.

Run: .venv/bin/python benchmarks/bench_cpu_matmul.py [--reps 10] [--threads N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from common import default_model_and_prompts

from specbench_cli import cpu_attention, cpu_matmul
from specbench_cli.cpu_matmul import CpuLinear
from specbench_cli.kvcache import cache_argument

DRAFTED = (0, 1, 2, 3, 4, 7, 15)


def forward_times(model: torch.nn.Module, prompt: torch.Tensor, variants: dict[str, tuple],
                  reps: int) -> dict[str, tuple[dict[int | str, float], torch.Tensor]]:  # fmt: skip
    """Per variant (linear class, attention implementation): median seconds per forward by
    drafted count and for the prefill, and the logits of the d=4 forward."""
    arg = cache_argument(model)
    times = {v: {d: [] for d in (*DRAFTED, "prefill")} for v in variants}
    logits = {}
    order = list(variants)
    shuffle = random.Random(0).shuffle  # a new order every repetition: no variant always runs
    with torch.inference_mode():        # right after another's cache-cold prefill
        for _ in range(reps):
            shuffle(order)
            for name in order:
                cls, attention = variants[name]
                set_linear(model, cls)
                model.set_attn_implementation(attention)
                t0 = time.perf_counter()
                cache = model(prompt, use_cache=True, logits_to_keep=1).past_key_values
                times[name]["prefill"].append(time.perf_counter() - t0)
                for d in DRAFTED:
                    ids = torch.arange(100, 101 + d)[None]
                    t0 = time.perf_counter()
                    out = model(ids, use_cache=True, **{arg: cache})
                    times[name][d].append(time.perf_counter() - t0)
                    cache.crop(-(d + 1))
                    if d == 4:
                        logits[name] = out.logits
    return {v: ({d: statistics.median(t) for d, t in times[v].items()}, logits[v])
            for v in variants}  # fmt: skip


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
    if cpu_matmul.kernel() is None or cpu_matmul.onednn() is None:
        raise SystemExit("the few-row kernel could not be built (see the warning above) or this "
                         "torch lacks oneDNN")
    variants = {"F.linear": (torch.nn.Linear, "sdpa"), "W@x^T": (MmLinear, "sdpa"),
                "CpuLinear": (CpuLinear, "sdpa"), "loaded": (CpuLinear, cpu_attention.NAME)}
    results = forward_times(m.model, prompt, variants, args.reps)
    print("loaded = CpuLinear + gqa_sdpa, what models load with; the others use transformers' sdpa")
    for name, (times, _) in results.items():
        cells = "  ".join(f"d={d}: {1000 * times[d]:5.1f} ms ({times[d] / times[0]:.2f}x)"
                          for d in DRAFTED)  # fmt: skip
        print(f"{name:9s} {cells}  prefill: {1000 * times['prefill']:5.1f} ms")
    ours = results["loaded"][0]
    for other in ("F.linear", "W@x^T", "CpuLinear"):
        print(f"{other} / loaded per forward: " + "  ".join(
            f"d={d}: {results[other][0][d] / ours[d]:.2f}x" for d in (*DRAFTED, "prefill")))
    for other in ("W@x^T", "CpuLinear", "loaded"):
        diff = (results["F.linear"][1] - results[other][1]).abs().max().item()
        print(f"largest logit difference to F.linear at d=4, {other}: {diff:.2e}")


if __name__ == "__main__":
    main()
