"""Tree attention on transformers models: the 4-D mask, position ids by depth, cache compaction,
and a probe that a model honours all three (docs/engine.md, "Token trees").

A tree of drafts is verified in one forward pass: every node attends to the cached prefix, to
its ancestors and to itself, never to a sibling branch, and sits at position `prefix + depth`.
transformers passes a 4-D attention mask through unchanged (`masking_utils`), but whether a model
family really uses it (and explicit `position_ids`) is not guaranteed, and sliding-window or
recurrent layers cannot be compacted by index. `check_tree_attention` therefore runs a small
probe once per model: tree forward against plain forwards of every path, then a compacted cache
against a plain cache, and fails with a clear message otherwise.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

import torch
from torch import Tensor

from specbench_cli.errors import BadInput
from specbench_cli.kvcache import cache_argument

_PROBED: WeakKeyDictionary[Any, bool] = WeakKeyDictionary()
PROBE_TOLERANCE = {torch.float32: 1e-3, torch.float64: 1e-6}  # x (1 + max |logit|); half: 5e-2


class TreeAttentionUnsupported(BadInput):
    """The model cannot verify token trees (mask ignored, or a cache that cannot be compacted)."""


def ancestors(parents: list[int]) -> Tensor:
    """`[M, M]` bool: `[i, j]` iff node j is node i or one of its ancestors (`parents[i]` < i,
    -1 for a node without a parent in the list)."""
    seen = torch.eye(len(parents), dtype=torch.bool)
    for i, parent in enumerate(parents):
        if parent >= 0:
            seen[i] |= seen[parent]
    return seen


def tree_mask(seen: Tensor, rows: Tensor, prefix: int, dtype: torch.dtype,
              device: torch.device) -> Tensor:  # fmt: skip
    """Additive mask `[1, 1, len(rows), prefix + M]`: node `rows[r]` sees the `prefix` cached
    positions and the nodes `seen[rows[r]]` marks (the M tree nodes follow the prefix in the
    cache, in order)."""
    visible = torch.cat([torch.ones(len(rows), prefix, dtype=torch.bool), seen[rows]], 1)
    mask = torch.zeros(visible.shape, dtype=dtype).masked_fill_(~visible, torch.finfo(dtype).min)
    return mask.to(device)[None, None]


def tree_forward(model: Any, ids: list[int], positions: list[int], mask: Tensor, cache: Any,
                 cache_arg: str, vocab: int | None = None) -> Tensor:  # fmt: skip
    """Logits `[len(ids), V]` of one masked forward that appends `ids` to `cache`."""
    device = mask.device
    out = model(input_ids=torch.tensor([ids], device=device),
                position_ids=torch.tensor([positions], device=device), attention_mask=mask,
                use_cache=True, **{cache_arg: cache})  # fmt: skip
    return out.logits[0, :, :vocab]


def keep_cache_positions(cache: Any, keep: Tensor) -> None:
    """Keep only the cache positions `keep` (`[n]` long, increasing), in that order."""
    from transformers.cache_utils import DynamicLayer

    for layer in cache.layers:
        if type(layer) is not DynamicLayer:
            raise TreeAttentionUnsupported(
                f"token trees need a plain KV cache; this model's cache has {type(layer).__name__}"
                " layers, whose entries cannot be kept by position")
        index = keep.to(layer.keys.device)
        layer.keys = layer.keys.index_select(-2, index)
        layer.values = layer.values.index_select(-2, index)


def _refuse_sliding(model: Any) -> None:
    config = model.config
    types = getattr(config, "layer_types", None) or ()
    sliding = getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", 1)
    if sliding or any("sliding" in str(t) or "linear" in str(t) for t in types):
        raise TreeAttentionUnsupported(
            f"model family {config.model_type!r} has sliding-window or linear-attention layers: "
            "a custom tree mask would be applied to every layer and their caches cannot be "
            "compacted by position; token trees are not supported for it")


def check_tree_attention(model: Any) -> None:
    """Raise `TreeAttentionUnsupported` unless `model` verifies trees exactly (probe once)."""
    if _PROBED.get(model):
        return
    _refuse_sliding(model)
    kind = model.config.model_type
    try:
        gap, scale = _probe(model)
    except TreeAttentionUnsupported:
        raise
    except Exception as exc:  # a model that rejects 4-D masks or position ids outright
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TreeAttentionUnsupported(
            f"model family {kind!r} cannot run a tree-masked forward pass ({first})") from None
    dtype = model.get_input_embeddings().weight.dtype
    if gap > PROBE_TOLERANCE.get(dtype, 5e-2) * (1.0 + scale):
        raise TreeAttentionUnsupported(
            f"model family {kind!r} does not honour a custom 4-D attention mask with explicit "
            f"position ids (tree logits differ from plain decoding by {gap:.3g}); token trees "
            "are not supported for it")
    _PROBED[model] = True


@torch.inference_mode()
def _probe(model: Any) -> tuple[float, float]:
    """(largest logit gap, largest |logit|) between tree decoding and plain decoding.

    Prefix [a] cached; tree: root b, children c and d of b, e child of c. Rows must equal the
    plain forwards of [a b c e] and [a b d]; after compacting the cache to [a b c e], one more
    token f must match the plain forward of [a b c e f]."""
    from transformers import DynamicCache

    arg = cache_argument(model)
    device = model.get_input_embeddings().weight.device
    dtype = model.get_input_embeddings().weight.dtype
    vocab = model.get_output_embeddings().weight.shape[0]
    a, b, c, d, e, f = (torch.arange(6) * 7 + 3) % max(vocab - 1, 1) + 1
    a, b, c, d, e, f = (int(t) for t in (a, b, c, d, e, f))

    def plain(ids: list[int]) -> Tensor:
        return model(input_ids=torch.tensor([ids], device=device)).logits[0].float()

    cache = DynamicCache()
    model(input_ids=torch.tensor([[a]], device=device), use_cache=True, **{arg: cache})
    seen = ancestors([-1, 0, 0, 1])  # b; c, d under b; e under c
    mask = tree_mask(seen, torch.arange(4), 1, dtype, device)
    tree = tree_forward(model, [b, c, d, e], [1, 2, 2, 3], mask, cache, arg).float()
    path, side = plain([a, b, c, e]), plain([a, b, d])
    gaps = [tree[[0, 1, 3]] - path[1:], tree[2] - side[2]]
    keep_cache_positions(cache, torch.tensor([0, 1, 2, 4]))
    after = model(input_ids=torch.tensor([[f]], device=device), use_cache=True,
                  **{arg: cache}).logits[0, -1].float()  # fmt: skip
    gaps.append(after - plain([a, b, c, e, f])[-1])
    gap = max(float(g.abs().max()) for g in gaps)
    return gap, float(path.abs().max())
