"""KV-cache rollback that works across transformers versions.

transformers 5 `DynamicCache.crop(n)` only accepts a negative n (tokens to remove), while 4.x
took the length to keep; `crop_to` takes the length to keep and removes the rest.
"""

from __future__ import annotations

from typing import Any


def crop_to(cache: Any, keep: int) -> None:
    remove = cache.get_seq_length() - keep
    if remove > 0:
        cache.crop(-remove)
