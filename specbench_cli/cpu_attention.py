"""Attention for grouped-query models on the CPU without copying the KV cache per query head.

transformers' `sdpa` attention lets torch's `scaled_dot_product_attention` handle grouped-query
attention itself (`enable_gqa`) only where no mask is given, and packs a single query token's
heads by key/value head (`pack_gqa`). A verify step has several query tokens and a mask (the
pending token and the drafts over the cache; a batch's padding), so every layer first expands the
key/value heads to one copy per query head (`repeat_kv`): a copy of the whole cache, per layer,
per step.

`gqa_sdpa` packs those queries too: the `g` query heads that share a key/value head become
`g * q` query rows of that head (`[B, H, q, d]` -> `[B, H_kv, g*q, d]`, rows ordered by head then
position), the mask is tiled to match once per forward pass, and one attention call over the
`H_kv` heads reads each key/value head once. On the CPU that is also the faster kernel shape:
default model's heads (9 query, 3 key/value, d 64), 5 query tokens over a 300-token cache,
55 µs per layer against 129 µs with the copy and 89 µs with `enable_gqa` (bench_cpu_matmul.py
measures whole forward passes). Every other call (one query token, no mask, per-head masks)
goes to transformers' own `sdpa` function unchanged. Each query row still meets the same keys
under the same mask row, so the result equals transformers' up to float32 rounding
(`tests/test_cpu_attention.py`; greedy decoding on it emits transformers' tokens). Installed
at load on CPU models that use `sdpa`, under its own name so that transformers builds `sdpa`'s
masks for it; `SPECBENCH_CPU_ATTENTION=off` keeps transformers'. Results record the attention a
target ran (`environment.attention`).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from transformers.integrations.sdpa_attention import sdpa_attention_forward

NAME = "specbench_gqa_sdpa"


def gqa_sdpa(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
             value: torch.Tensor, attention_mask: torch.Tensor | None, dropout: float = 0.0,
             scaling: float | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:  # fmt: skip
    """transformers' attention-function signature: `query` `[B, H, q, d]`, `key`/`value`
    `[B, H_kv, kv, d]`, returns `([B, q, H, d], None)`."""
    groups = getattr(module, "num_key_value_groups", 1)
    B, H, q, d = query.shape
    if (groups > 1 and q > 1 and attention_mask is not None and attention_mask.dim() == 4
            and attention_mask.shape[1] == 1 and kwargs.get("position_bias") is None
            and kwargs.get("softcap") is None and not kwargs.get("output_attentions")):
        out = F.scaled_dot_product_attention(
            query.reshape(B, H // groups, groups * q, d), key, value,
            attn_mask=_tiled(attention_mask, groups), dropout_p=dropout, scale=scaling)
        return out.reshape(B, H, q, d).transpose(1, 2).contiguous(), None
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                  scaling=scaling, **kwargs)  # fmt: skip


_last_tiled: tuple[torch.Tensor, int, torch.Tensor] | None = None


def _tiled(mask: torch.Tensor, groups: int) -> torch.Tensor:
    """`mask` `[B, 1, q, kv]` repeated `groups` times along the query rows. Every layer of a
    forward pass gets the same mask object, so the last one is kept (by identity: the reference
    held keeps its id from being reused) and tiled once per pass."""
    global _last_tiled
    if _last_tiled is None or _last_tiled[0] is not mask or _last_tiled[1] != groups:
        _last_tiled = (mask, groups, mask.repeat(1, 1, groups, 1))
    return _last_tiled[2]


def enabled() -> bool:
    return os.environ.get("SPECBENCH_CPU_ATTENTION", "on").lower() not in ("0", "off", "false",
                                                                            "no")  # fmt: skip


def use_gqa_sdpa(model: Any) -> bool:
    """Switch a CPU model that runs transformers' `sdpa` attention to `gqa_sdpa`. Returns whether
    it did (not for other attention implementations, other devices, or when switched off)."""
    config = getattr(model, "config", None)
    if (not enabled() or getattr(config, "_attn_implementation", None) != "sdpa"
            or any(p.device.type != "cpu" for p in model.parameters())):
        return False
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, gqa_sdpa)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    model.set_attn_implementation(NAME)
    return True


def mode(model: Any) -> str | None:
    """The attention a model runs, as results record it (`environment.attention`)."""
    return getattr(getattr(model, "config", None), "_attn_implementation", None)
