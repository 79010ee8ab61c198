"""A batch of sequences of different lengths sharing one rectangular KV cache (docs/engine.md).

Speculative rows accept different numbers of drafts, so after a step each row keeps a different
number of the slots the step appended; a transformers `DynamicCache` is rectangular and its
`crop` cuts every row to one length. `RaggedCache` keeps the rectangle and says per slot whether
it holds one of the row's tokens:

- `valid` `[B, S]` marks the slots holding a row's tokens, in order; the others are padding
  (before a short prompt) or holes (a rejected draft, a placeholder of a shorter row). The
  attention mask is `valid` plus the new slots, so no token ever attends to a padding slot or a
  hole.
- A token's position id is the number of the row's tokens before it (`lengths[r] + j`), never
  its slot index, so rotary embeddings see the same positions as in a batch of one.
- `truncate(keep)` keeps each row's first `keep[r]` tokens and turns the rest into holes; slots
  that are invalid in every row are cropped from the end. When the slack (slots beyond the
  longest row) exceeds a quarter of that row, the slots are compacted: each row's tokens are
  gathered, in order, to the right end of a rectangle as wide as the longest row.
- `select(rows)` drops finished rows, so nothing is computed for them afterwards.

With one row nothing is ever padding or a hole, no mask is passed, and every forward is exactly
the unbatched one.
"""

from __future__ import annotations

from typing import Any

import torch

from specbench_cli.kvcache import cache_argument, crop_to, gather_slots, select_rows

COMPACT_SLACK = 0.25  # compact when slots beyond the longest row exceed this share of it
COMPACT_MIN_SLOTS = 8  # ... and at least this many


class RaggedCache:
    """A model's KV cache for a batch of rows of different lengths."""

    def __init__(self, model: Any, rows: int) -> None:
        from transformers import DynamicCache

        self.model = model
        self.device = model.get_input_embeddings().weight.device
        self.cache = DynamicCache()
        self.lengths = [0] * rows  # tokens each row holds
        self.valid = torch.zeros(rows, 0, dtype=torch.bool, device=self.device)  # [B, S]
        self._cache_arg = cache_argument(model)

    @property
    def slots(self) -> int:
        return self.valid.shape[1]

    def forward(self, ids: list[list[int]], *, right_align: bool = False,
                last_only: bool = False) -> torch.Tensor:  # fmt: skip
        """Append each row's tokens (ragged) in one forward and return the logits.

        Left-aligned (default), row `r`'s tokens fill the first `len(ids[r])` new slots and the
        logits are `[B, W, V]`, row `r`'s `j`-th token at `[r, j]`. Right-aligned, they fill the
        last slots, so with `last_only` the logits `[B, 1, V]` are every row's last token's.
        Every row must append at least one token.
        """
        widths = [len(row) for row in ids]
        W = max(widths)
        if min(widths) < 1 or len(ids) != len(self.lengths):
            raise ValueError("every row of the batch must append at least one token")
        pad = [W - w for w in widths]
        rows = [[0] * p + row if right_align else row + [0] * p
                for row, p in zip(ids, pad, strict=True)]  # fmt: skip
        offset = torch.tensor(pad if right_align else [0] * len(ids), device=self.device)[:, None]
        end = offset + torch.tensor(widths, device=self.device)[:, None]
        j = torch.arange(W, device=self.device)
        block = (j >= offset) & (j < end)  # [B, W]: the new slots holding tokens
        start = torch.tensor(self.lengths, device=self.device)
        positions = (start[:, None] + j - offset).clamp(min=0)  # [B, W]
        self.valid = torch.cat([self.valid, block], dim=1)
        self.lengths = [n + w for n, w in zip(self.lengths, widths, strict=True)]
        dense = all(n == self.slots for n in self.lengths)
        kwargs = {"logits_to_keep": 1} if last_only else {}
        out = self.model(
            input_ids=torch.tensor(rows, device=self.device),
            attention_mask=None if dense else self.valid.long(),
            position_ids=positions, use_cache=True, **{self._cache_arg: self.cache}, **kwargs,
        )  # fmt: skip
        return out.logits

    def truncate(self, keep: list[int]) -> None:
        """Keep each row's first `keep[r]` tokens (at most what it holds); the rest become
        holes. Then crop slots no row uses from the end, and compact when the slack is large."""
        keep = [min(k, n) for k, n in zip(keep, self.lengths, strict=True)]
        if keep == self.lengths:
            return
        rank = self.valid.cumsum(1)  # [B, S]: 1-based rank of each valid slot in its row
        self.valid &= rank <= torch.tensor(keep, device=self.device)[:, None]
        self.lengths = keep
        used = self.valid.any(0).nonzero()
        self._crop(int(used[-1]) + 1 if len(used) else 0)
        self._maybe_compact()

    def select(self, rows: list[int]) -> None:
        """Keep only `rows` (indices into the current batch), in that order."""
        if rows == list(range(len(self.lengths))):
            return
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        select_rows(self.cache, index)
        self.valid = self.valid[index]
        self.lengths = [self.lengths[r] for r in rows]
        used = self.valid.any(0).nonzero()
        self._crop(int(used[-1]) + 1 if len(used) else 0)
        self._maybe_compact()

    def _crop(self, slots: int) -> None:
        crop_to(self.cache, slots)
        self.valid = self.valid[:, :slots]

    def _maybe_compact(self) -> None:
        longest = max(self.lengths, default=0)
        slack = self.slots - longest
        if slack > max(COMPACT_MIN_SLOTS, COMPACT_SLACK * longest):
            self._compact(longest)

    def _compact(self, width: int) -> None:
        # a stable sort puts each row's invalid slots first and its valid slots after them, in
        # order; the last `width` entries hold every row's tokens, right-aligned
        order = torch.sort(self.valid.to(torch.uint8), dim=1, stable=True).indices
        index = order[:, self.slots - width :]  # [B, width]
        gather_slots(self.cache, index)
        self.valid = self.valid.gather(1, index)
