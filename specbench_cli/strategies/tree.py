"""Draft trees: the input of a tree verification step, its structure and its checks.

A `DraftTree` holds N drafted nodes: each node's token, its parent (-1 for a child of the root,
parents listed before children) and the distribution its token was drawn from. Node `i` is
verified against target row `i + 1`; row 0 is the target at the root (the pending token). Siblings
drawn from one draft model carry the same draft row; how they were drawn (i.i.d. or without
replacement) is a property of the rule that verifies them (`TreeStrategy.draft_scheme`).

Trees may be batched: `tokens` `[B, N]` with one `parents` `[N]` shared by every row (the
statistical tests verify many same-shaped trees in one call; the engine verifies one tree).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from .inputs import check_probs


@dataclass(frozen=True)
class DraftTree:
    """Drafted nodes of one verification step (or of B same-shaped steps)."""

    tokens: Tensor  # [N] or [B, N] long: node tokens
    parents: Tensor  # [N] long: parent node index, -1 for a child of the root
    draft_probs: Tensor | None = None  # [N, V] / [B, N, V]: law node i came from; None: one-hot

    @cached_property
    def shape(self) -> TreeShape:
        return TreeShape.of(self.parents)


@dataclass(frozen=True)
class TreeVerifyResult:
    """Outcome of tree verification, batched: `-1` pads rows shorter than the tree's depth."""

    path: Tensor  # [B, D] long: accepted node indices, root to deepest, then -1
    tokens: Tensor  # [B, D+1] long: the path's tokens, one emitted token, then -1
    num_accepted: Tensor  # [B] long: path length; the row emits num_accepted + 1 tokens

    def row(self, b: int = 0) -> TreeVerifyResult:
        """Row `b` unpadded: `path` `[a]`, `tokens` `[a+1]`, `num_accepted` a 0-d tensor."""
        a = int(self.num_accepted[b])
        return TreeVerifyResult(self.path[b, :a], self.tokens[b, : a + 1], self.num_accepted[b])


@dataclass(frozen=True)
class TreeShape:
    """The structure of a tree: node depths and a children table, computed once per tree."""

    parents: Tensor  # [N] long
    depth: Tensor  # [N] long: 1 for children of the root
    children: Tensor  # [N+1, K] long: row c+1 = children of node c (row 0: the root), -1 padded

    @classmethod
    def of(cls, parents: Tensor) -> TreeShape:
        """Checked structure of `parents` `[N]`; `ValueError` unless parents precede children."""
        if not isinstance(parents, Tensor) or parents.ndim != 1 or parents.is_floating_point():
            raise ValueError("parents must be an integer [N] tensor")
        listed = [int(v) for v in parents.tolist()]
        for i, parent in enumerate(listed):
            if not -1 <= parent < i:
                raise ValueError(
                    f"parents[{i}] = {parent}: a parent must be -1 (the root) or an earlier node"
                )
        kids: list[list[int]] = [[] for _ in range(len(listed) + 1)]
        depth: list[int] = []
        for i, parent in enumerate(listed):
            kids[parent + 1].append(i)
            depth.append(1 if parent < 0 else depth[parent] + 1)
        width = max((len(k) for k in kids), default=0)
        table = torch.full((len(kids), max(width, 1)), -1, dtype=torch.long)
        for row, k in enumerate(kids):
            table[row, : len(k)] = torch.tensor(k, dtype=torch.long)
        device = parents.device
        return cls(parents.long(), torch.tensor(depth, dtype=torch.long, device=device),
                   table.to(device))  # fmt: skip

    @property
    def num_nodes(self) -> int:
        return self.parents.numel()

    @property
    def max_depth(self) -> int:
        return int(self.depth.max()) if self.num_nodes else 0

    @property
    def max_branches(self) -> int:
        return int((self.children >= 0).sum(1).max()) if self.num_nodes else 0


Checked = tuple[Tensor, Tensor, Tensor | None, Tensor | None, bool]


def checked_tree(target_probs: Tensor, tree: DraftTree, target_logits: Tensor | None,
                 validate: bool) -> Checked:  # fmt: skip
    """`(target_probs [B, N+1, V], tokens [B, N], draft_probs [B, N, V] | None, target_logits
    [B, N+1, V] | None, batched)`, float32/int64; `ValueError` on anything the walk cannot take."""
    shape = tree.shape  # checks parents
    n = shape.num_nodes
    tokens = tree.tokens
    if not isinstance(tokens, Tensor) or tokens.is_floating_point() or tokens.ndim not in (1, 2):
        raise ValueError("tree tokens must be an integer [N] or [B, N] tensor")
    batched = tokens.ndim == 2
    tokens = tokens if batched else tokens[None]
    if tokens.shape[1] != n:
        raise ValueError(f"tree has {n} parents but {tokens.shape[1]} tokens")
    B = tokens.shape[0]
    q = _batched("target_probs", target_probs, batched, (B, n + 1), "[N+1, V]")
    V = q.shape[-1]
    p = None
    if tree.draft_probs is not None:
        p = _batched("draft_probs", tree.draft_probs, batched, (B, n), "[N, V]", V)
    logits = None
    if target_logits is not None:
        logits = _batched("target_logits", target_logits, batched, (B, n + 1), "[N+1, V]", V)
    if validate:
        check_probs("target_probs", q, None)
        if p is not None:
            check_probs("draft_probs", p, None)
        if n and B and not bool(((tokens >= 0) & (tokens < V)).all()):
            raise ValueError(f"tree tokens must lie in [0, V={V})")
        if logits is not None and bool(torch.isnan(logits).any()):
            raise ValueError("target_logits contain NaN")
    return q.float(), tokens.long(), None if p is None else p.float(), logits, batched


def _batched(name: str, t: object, batched: bool, lead: tuple[int, int], what: str,
             V: int | None = None) -> Tensor:  # fmt: skip
    """`t` as `[B, R, V]`, checking its leading sizes (and V when given)."""
    ok = isinstance(t, Tensor) and t.ndim == (3 if batched else 2) and t.is_floating_point()
    if ok and not batched:
        t = t[None]  # type: ignore[index]
    if ok:
        ok = tuple(t.shape[:2]) == lead and t.shape[2] > 0 and V in (None, t.shape[2])
    if not ok:
        want = f"[B, {what[1:]}" if batched else what
        got = list(t.shape) if isinstance(t, Tensor) else type(t).__name__
        raise ValueError(f"{name} must be a float {want} tensor matching the tree, got {got}")
    return t.float()  # type: ignore[union-attr]
