"""The fixed sets of names a run setting may take. A leaf: imports nothing, not even torch."""

from __future__ import annotations

BACKENDS = ("auto", "torch", "cpu", "cuda")  # verification: auto = fastest available here
NOISE_MODES = ("race", "icdf")  # final-token noise, see docs/randomness.md
DTYPES = ("auto", "float32", "bfloat16", "float16")  # auto: float32 on CPU, bfloat16 on GPU
ENGINES = ("vllm", "sglang", "llamacpp")  # serving engines `--server` can benchmark
