"""KV-cache handling that works across transformers versions.

transformers 5 `DynamicCache.crop(n)` only accepts a negative n (tokens to remove), while 4.x
took the length to keep; `crop_to` takes the length to keep and removes the rest. Recent 5.x
releases renamed the forward argument `past_key_values` to `cache` (the old name warns);
`cache_argument` names whichever one the model takes. `select_rows` and `gather_slots` rebuild
a batched cache (drop finished rows; move each row's entries to other slots) through the
layers' `keys`/`values` tensors, `[B, heads, S, head_dim]` in transformers 5.
"""

from __future__ import annotations

import inspect
from typing import Any


def crop_to(cache: Any, keep: int) -> None:
    remove = cache.get_seq_length() - keep
    if remove > 0:
        cache.crop(-remove)


def cache_argument(model: Any) -> str:
    """`cache` or `past_key_values`: the keyword `model.forward` takes the KV cache by."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def select_rows(cache: Any, rows: Any) -> None:
    """Keep only the batch rows `rows` (a long tensor of indices) of every layer."""
    cache.batch_select_indices(rows)


def gather_slots(cache: Any, index: Any) -> None:
    """Rebuild every layer from the slots `index` `[B, S']` of each row (in that order)."""
    for layer in cache.layers:
        if getattr(layer, "keys", None) is None or layer.keys.numel() == 0:
            continue
        B, H, _, D = layer.keys.shape
        at = index[:, None, :, None].expand(B, H, index.shape[1], D)
        layer.keys = layer.keys.gather(2, at)
        layer.values = layer.values.gather(2, at)
