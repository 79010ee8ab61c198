"""Block verification: Sun, Mendlovic, Leviathan, Aharoni, Ro, Beirami, Suresh, "Block
Verification Accelerates Speculative Decoding" (ICLR 2025, Algorithm 2); docs/strategies.md.

Owns the block rule. The drafted block is judged as a whole: a token SpS would reject can be kept
when the tokens after it make up for it. With `p_0 = 1`, for drafted positions `i = 1..n`:

    p_i = min(1, p_{i-1} q_{i-1}(x_i) / p_{i-1}^draft(x_i))          (how far the block is "paid")
    Z_i = sum_v max(0, p_i q_i(v) - p_i^draft(v))                     (i < n; rows are 0-based)
    h_i = Z_i / (Z_i + 1 - p_i)   for i < n,        h_n = p_n

`tau` = the largest `i` with `u_i (Z_i + 1 - p_i) < Z_i` (`u_n < p_n` at the last position; the
strict multiplicative form of the paper's `eta_i <= h_i`, so a zero denominator never stops),
0 when there is none. The step keeps `x_1..x_tau` and emits a bonus from `q_n` when `tau = n`, else
a sample of `max(0, p_tau q_tau - p_tau^draft)`: the residual depends on how far the block was
accepted (at `tau = 0` it is the SpS residual).

Lossless for the law of the whole emitted sequence, not position by position: the token kept at
position 1 of a longer block is not distributed as q_0 on its own. A block of one draft is SpS
exactly, which is what `output_distribution` (one position) describes. Expected accepted tokens
are never below SpS's on the same drafts (the paper's theorem). Deterministic drafts: `p_i` is
the product of the `q(x_j)`; greedy targets reduce it to greedy verification.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Step, Strategy, rejected_row
from .inputs import as_pair
from .weights import gather_rows, sample_from_weights


def paid_ratios(step: Step) -> Tensor:
    """`[B, k+1]`: `p_0 = 1` and `p_i = min(1, p_{i-1} q(x_i) / p(x_i))`. A zero numerator stays
    0 even where `p(x_i) = 0`; `p(x_i) = 0` with a positive numerator gives 1 (as SpS accepts)."""
    B, k = step.q_x.shape
    ratios = [torch.ones(B, device=step.q_x.device)]
    for i in range(k):
        num = ratios[-1] * step.q_x[:, i]
        ratios.append(torch.where(num > 0, (num / step.p_x[:, i]).clamp_max(1.0), 0.0))
    return torch.stack(ratios, 1)


def _residual_mass(step: Step, ratios: Tensor) -> Tensor:
    """`[B, k-1]`: `Z_i = sum_v max(0, p_i q_i(v) - p_i^draft(v))` for drafted rows 1..k-1."""
    k = step.draft_tokens.shape[1]
    scale = ratios[:, 1:k]  # [B, k-1]
    if step.draft_probs is None:  # one-hot drafts: every v but x_i keeps p_i q_i(v)
        return scale * (1.0 - step.q_x[:, 1:])
    w = scale[..., None] * step.target_probs[:, 1:k] - step.draft_probs[:, 1:]
    return w.clamp_min_(0.0).sum(-1)


class Block(Strategy):
    """Block verification: judge the drafted block jointly; lossless, accepts >= sps."""

    name = "block"
    LOSSLESS = True

    def accept(self, step: Step) -> Tensor:
        B, k = step.draft_tokens.shape
        ratios = paid_ratios(step)  # [B, k+1]
        n_r = (torch.full((B,), k, device=ratios.device) if step.num_drafts is None
               else step.num_drafts)  # fmt: skip
        mass = _residual_mass(step, ratios)  # [B, k-1]
        positions = torch.arange(1, k + 1, device=ratios.device)  # 1-based
        # the last real draft stops with h = p_n; earlier ones with Z / (Z + 1 - p_i)
        last = positions[None] == n_r[:, None]  # [B, k]
        mass = torch.nn.functional.pad(mass, (0, 1))  # [B, k]; column k-1 is always a last one
        numerator = torch.where(last, ratios[:, 1:], mass)
        denominator = torch.where(last, 1.0, mass + (1.0 - ratios[:, 1:]))
        stops = (step.u_acc * denominator < numerator) & (positions[None] <= n_r[:, None])
        tau = (stops * positions).amax(1)  # 0 when no position stops
        return positions[None] <= tau[:, None]  # the driver counts the leading True: tau

    def emit(self, step: Step, num_accepted: Tensor, is_bonus: Tensor) -> Tensor:
        q_a = gather_rows(step.target_probs, num_accepted)  # [B, V]
        if bool(is_bonus.all()):
            return sample_from_weights(q_a, step.final, fallback=q_a)
        paid = paid_ratios(step).gather(1, num_accepted[:, None])  # [B, 1]: p_tau
        weights = (paid * q_a - rejected_row(step, num_accepted, q_a).p).clamp_min_(0.0)
        if bool(is_bonus.any()):
            weights[is_bonus] = q_a[is_bonus]
        return sample_from_weights(weights, step.final, fallback=q_a)

    def output_distribution(self, q: Tensor, p: Tensor) -> Tensor:
        """A one-draft block is SpS: `pi = q`. (In longer blocks only the joint law of the
        emitted sequence is the target's; see the module docstring.)"""
        return as_pair(q, p)[0]

    def acceptance_probability(self, q: Tensor, p: Tensor) -> float:
        """A one-draft block is SpS: `sum_x min(p(x), q(x))`."""
        q, p = as_pair(q, p)
        return float(torch.minimum(p, q).sum())
