"""The fixed sets of names a run setting may take. A leaf: imports nothing, not even torch."""

from __future__ import annotations

BACKENDS = ("auto", "torch", "cpu", "cuda")  # verification: auto = fastest available here
# The verification noise results record as `config.noise_mode` (docs/randomness.md): Philox
# keyed by each row's prompt seed and length. Older files say "philox" (a key drawn per step from
# the row's generator), or "race" / "icdf" (before counter-based noise).
NOISE_STREAM = "philox-row"
DTYPES = ("auto", "float32", "bfloat16", "float16")  # auto: float32 on CPU, bfloat16 on GPU
ENGINES = ("vllm", "sglang", "llamacpp")  # serving engines `--server` can benchmark
