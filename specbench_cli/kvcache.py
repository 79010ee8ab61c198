"""KV-cache handling that works across transformers versions.

transformers 5 `DynamicCache.crop(n)` only accepts a negative n (tokens to remove), while 4.x
took the length to keep; `crop_to` takes the length to keep and removes the rest. Recent 5.x
releases renamed the forward argument `past_key_values` to `cache` (the old name warns);
`cache_argument` names whichever one the model takes.
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
