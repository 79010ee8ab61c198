"""The tree-rule protocol: multi-draft and token-tree verification, next to the chain rules.

A `TreeStrategy` verifies a `DraftTree` (`tree.py`) in one step. The walk is shared: start at the
root; at the current node run the rule over its children (the sibling group, `select`); an
accepted child becomes the current node; when no child is accepted, emit one token from the
rule's correction weights and stop; at a node without children emit the bonus from that node's
target row. Every row emits `len(path) + 1` tokens. A rule only says how one sibling group is
judged (`select`) and, optionally, how the bonus and the final token are taken.

Randomness (docs/randomness.md): the counter-based noise of a chain step with one accept uniform
per tree node, `u_acc` `[B, N]` (node i uses `u_acc[:, i]` when it is tested), and the 64-bit
final draw that samples the one token a row emits per step, from the correction or the bonus.
The walk is the PyTorch reference on every backend; no compiled kernel exists for trees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Generator, Tensor

from specbench_cli.noise import Noise

from .rule import Rule
from .tree import DraftTree, TreeShape, TreeVerifyResult, checked_tree
from .weights import gather_rows, sample_from_weights

DRAFT_SCHEMES = ("iid", "without_replacement", "any")


@dataclass(frozen=True)
class SiblingGroup:
    """The children of the current node of `A` active rows, `K` slots in node order."""

    q: Tensor  # [A, V] target at the current node
    logits: Tensor | None  # [A, V] processed target logits there (greedy's argmax source)
    tokens: Tensor  # [A, K] long: the children's tokens (0 in empty slots)
    live: Tensor  # [A, K] bool: the slot holds a child (rows have K or fewer children)
    probs: Tensor | None  # [A, K, V]: the law each child was drawn from; None: one-hot
    u: Tensor | None  # [A, K] the children's accept uniforms (None for rules without noise)

    def one_hot(self, slot: int) -> Tensor:
        """`[A, V]` one-hot at the token in `slot` (the law of a deterministic draft)."""
        return torch.zeros_like(self.q).scatter_(1, self.tokens[:, slot : slot + 1], 1.0)

    def law(self, slot: int) -> Tensor:
        """`[A, V]` the law the child in `slot` was drawn from (one-hot if deterministic)."""
        return self.one_hot(slot) if self.probs is None else self.probs[:, slot]

    def at(self, t: Tensor, slot: int) -> Tensor:
        """`[A]` the value of `t` `[A, V]` at each row's token in `slot`."""
        return t.gather(1, self.tokens[:, slot : slot + 1]).squeeze(1)


class TreeStrategy(Rule):
    """Base class of the tree rules (`Rule`: `name`, `PARAMS`, `LOSSLESS`, a docstring).

    Subclasses set `draft_scheme` (how siblings must be drawn for the rule to keep its law:
    "iid", "without_replacement" or "any") and implement `select`; `output_distribution` and
    `acceptance_probability` give the exact one-node law where a closed form exists.
    """

    draft_scheme: ClassVar[str] = "any"
    SAMPLED_SIBLINGS: ClassVar[bool] = False  # refuses distinct deterministic siblings

    def __init__(self, *, driver: Any = None, **params: Any) -> None:
        super().__init__(**params)  # tree rules run the reference on every backend

    # --- the rule ------------------------------------------------------------------------------

    def select(self, group: SiblingGroup) -> tuple[Tensor, Tensor]:
        """`(chosen [A] long, correction [A, V])`: the accepted slot of each row (-1: none) and
        the nonnegative correction weights of the rows that accepted none."""
        raise NotImplementedError

    def bonus_weights(self, q: Tensor, logits: Tensor | None) -> Tensor:
        """Weights `[A, V]` of the bonus at a node without children (default: its target row)."""
        return q

    def final_token(self, weights: Tensor, fallback: Tensor, final: Tensor | None) -> Tensor:
        """One token `[B]` per row from `weights` `[B, V]` with the 64-bit draws `final` `[B]`;
        all-zero rows sample `fallback`."""
        return sample_from_weights(weights, final, fallback=fallback)

    def output_distribution(self, q: Tensor, p: Tensor, siblings: int = 1) -> Tensor:
        """Exact law `[V]` (float64) of the token emitted at one node whose `siblings` children
        were drawn from `p` by `draft_scheme` (one-hot `p`: that deterministic child)."""
        raise NotImplementedError

    def acceptance_probability(self, q: Tensor, p: Tensor, siblings: int = 1) -> float:
        """Exact probability that one of the node's `siblings` children is accepted."""
        raise NotImplementedError

    # --- one step ------------------------------------------------------------------------------

    def verify_tree(self, target_probs: Tensor, tree: DraftTree, generator: Generator | None = None,
                    *, target_logits: Tensor | None = None,
                    validate: bool = True) -> TreeVerifyResult:  # fmt: skip
        """Verify one tree (`tokens` `[N]`: an unpadded row result) or B same-shaped trees
        (`tokens` `[B, N]`: a padded batch result), drawing noise from `generator`.

        `target_probs` `[N+1, V]` (or `[B, N+1, V]`): row 0 is the target at the root, row
        `i + 1` the target after node i's path. `validate=False` skips the value checks."""
        q, tokens, p, logits, batched = checked_tree(target_probs, tree, target_logits, validate)
        noise = Noise.draw(generator, tokens.shape[0], device=q.device) if self.uses_noise else None
        result = walk(self, tree.shape, q, tokens, p, logits, noise)
        return result if batched else result.row(0)

    def verify_tree_with_noise(self, target_probs: Tensor, tree: DraftTree, noise: Noise | None,
                               *, target_logits: Tensor | None = None,
                               validate: bool = True) -> TreeVerifyResult:  # fmt: skip
        """`verify_tree` with explicit noise, e.g. `Noise(seeds, counters)`: each row's own
        stream, of which the walk reads `N` accept uniforms and the final draw."""
        q, tokens, p, logits, batched = checked_tree(target_probs, tree, target_logits, validate)
        if self.uses_noise:
            if not isinstance(noise, Noise):
                raise ValueError("this strategy needs noise: pass a Noise (see Noise.draw)")
            noise.check(tokens.shape[0])
        result = walk(self, tree.shape, q, tokens, p, logits, noise)
        return result if batched else result.row(0)


def walk(rule: TreeStrategy, shape: TreeShape, q: Tensor, tokens: Tensor, p: Tensor | None,
         logits: Tensor | None, noise: Noise | None) -> TreeVerifyResult:  # fmt: skip
    """The reference walk on checked inputs: `q` `[B, N+1, V]`, `tokens` `[B, N]`."""
    B, V = tokens.shape[0], q.shape[-1]
    device = q.device
    u_acc, final = (None, None) if noise is None else noise.draws(tokens.shape[1])
    children = shape.children.to(device)
    current = torch.full((B,), -1, dtype=torch.long, device=device)
    active = torch.ones(B, dtype=torch.bool, device=device)
    weights = torch.empty(B, V, device=device)
    fallback = torch.empty(B, V, device=device)
    path = torch.full((B, max(shape.max_depth, 0)), -1, dtype=torch.long, device=device)
    for depth in range(shape.max_depth + 1):
        rows = active.nonzero().squeeze(1)
        if not rows.numel():
            break
        here = current[rows] + 1  # target row of the current node
        q_here = gather_rows(q[rows], here)
        logits_here = None if logits is None else gather_rows(logits[rows], here)
        slots = children[here]  # [A, K]
        live = slots >= 0
        leaf = ~live.any(1)
        fallback[rows] = q_here
        if bool(leaf.any()):
            lr = rows[leaf]
            weights[lr] = rule.bonus_weights(q_here[leaf], _maybe(logits_here, leaf))
            active[lr] = False
        inner = ~leaf
        if not bool(inner.any()):
            break
        rows, slots, live = rows[inner], slots[inner], live[inner]
        group = _group(q_here[inner], _maybe(logits_here, inner), tokens[rows], p, rows, slots,
                       live, None if u_acc is None else u_acc[rows])  # fmt: skip
        chosen, correction = rule.select(group)
        accepted = chosen >= 0
        if bool((~accepted).any()):
            stop = rows[~accepted]
            weights[stop] = correction[~accepted]
            active[stop] = False
        moved = rows[accepted]
        current[moved] = slots[accepted].gather(1, chosen[accepted, None]).squeeze(1)
        path[moved, depth] = current[moved]
    emitted = rule.final_token(weights, fallback, final)
    num_accepted = (path >= 0).sum(1)
    out = torch.where(path >= 0, tokens.gather(1, path.clamp_min(0)), -1)
    out = torch.nn.functional.pad(out, (0, 1), value=-1)
    out.scatter_(1, num_accepted[:, None], emitted[:, None])
    return TreeVerifyResult(path, out, num_accepted)


def _maybe(t: Tensor | None, mask: Tensor) -> Tensor | None:
    return None if t is None else t[mask]


def _group(q: Tensor, logits: Tensor | None, tokens: Tensor, p: Tensor | None, rows: Tensor,
           slots: Tensor, live: Tensor, u: Tensor | None) -> SiblingGroup:  # fmt: skip
    """The sibling group of `rows` whose children sit in node `slots` `[A, K]`."""
    index = slots.clamp_min(0)
    kid_tokens = tokens.gather(1, index).masked_fill(~live, 0)
    probs = None
    if p is not None:
        probs = p[rows[:, None], index]  # [A, K, V]
    kid_u = None if u is None else u.gather(1, index)
    return SiblingGroup(q, logits, kid_tokens, live, probs, kid_u)
