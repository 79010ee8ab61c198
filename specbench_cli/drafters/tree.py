"""Tree proposals: what a drafter hands the tree engine, and the helpers that build and cut one.

A `TreeDraft` lists nodes in an order where parents precede children (the drafters here use
level order). `probs[i]` is the law node i's token was drawn from, the parent's draft row
repeated for every sibling; `None` means every node is deterministic (one-hot). How siblings
were drawn, i.i.d. or without replacement, is the verifying rule's `draft_scheme`; the drafter
is told which when it is asked for a tree.

Drafters without `propose_tree` still work under tree rules: their chain becomes a one-branch
tree (`chain_tree`). Cutting a tree at a depth or below an EOS removes whole subtrees, so every
remaining node keeps all its siblings and the rule's law is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from specbench_cli.drafters import Draft


@dataclass
class TreeDraft:
    tokens: list[int]  # N node tokens
    parents: list[int]  # N parent indices, -1 for a child of the root; parents come first
    probs: torch.Tensor | None  # [N, V] float32: the law each token was drawn from; None = one-hot
    forward_s: float = 0.0  # time inside model forward passes (0 for model-free drafters)
    depth: list[int] = field(default_factory=list)  # N node depths (1 = child of the root)

    def __post_init__(self) -> None:
        if not self.depth:
            self.depth = depths(self.parents)

    @property
    def max_depth(self) -> int:
        return max(self.depth, default=0)

    def cut(self, max_depth: int, eos_ids: frozenset[int]) -> TreeDraft:
        """The nodes at depth <= `max_depth` whose ancestors are no EOS (EOS nodes stay)."""
        keep, index = [], {}
        for i, (parent, d) in enumerate(zip(self.parents, self.depth, strict=True)):
            if d > max_depth or (parent >= 0 and (parent not in index
                                                  or self.tokens[parent] in eos_ids)):
                continue
            index[i] = len(keep)
            keep.append(i)
        if len(keep) == len(self.tokens):
            return self
        probs = None if self.probs is None else self.probs[keep]
        return TreeDraft([self.tokens[i] for i in keep],
                         [-1 if self.parents[i] < 0 else index[self.parents[i]] for i in keep],
                         probs, self.forward_s, [self.depth[i] for i in keep])  # fmt: skip


def depths(parents: list[int]) -> list[int]:
    """Node depths from parents listed before children (1 for children of the root)."""
    out: list[int] = []
    for parent in parents:
        out.append(1 if parent < 0 else out[parent] + 1)
    return out


def chain_tree(draft: Draft) -> TreeDraft:
    """A chain proposal as a one-branch tree: node j is the parent of node j + 1."""
    n = len(draft.tokens)
    return TreeDraft(list(draft.tokens), list(range(-1, n - 1)), draft.probs, draft.forward_s)


def merge_paths(paths: list[list[int]]) -> TreeDraft:
    """A deterministic tree holding every path in `paths` (shared prefixes share nodes),
    numbered in level order; paths keep their order among siblings."""
    children: dict[int, dict[int, int]] = {-1: {}}  # node -> token -> child node (insertion ids)
    tokens: list[int] = []
    parents: list[int] = []
    for path in paths:
        node = -1
        for tok in path:
            nxt = children[node].get(tok)
            if nxt is None:
                nxt = len(tokens)
                tokens.append(tok)
                parents.append(node)
                children[node][tok] = nxt
                children[nxt] = {}
            node = nxt
    return level_order(TreeDraft(tokens, parents, None))


def level_order(tree: TreeDraft) -> TreeDraft:
    """The same tree renumbered by depth (stable within a depth)."""
    order = sorted(range(len(tree.tokens)), key=lambda i: tree.depth[i])
    index = {old: new for new, old in enumerate(order)}
    probs = None if tree.probs is None else tree.probs[order]
    return TreeDraft([tree.tokens[i] for i in order],
                     [-1 if tree.parents[i] < 0 else index[tree.parents[i]] for i in order],
                     probs, tree.forward_s, [tree.depth[i] for i in order])  # fmt: skip
