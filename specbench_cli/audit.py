"""The divergence audit of lossy strategies: how far what a step emits is from the target.

At every drafted position whose token was emitted (positions 0..a of a step that accepted a
drafts; bonus positions add nothing), the strategy's exact one-step law `pi` is computed from that
position's target and draft distributions, and `KL(pi || q)` and `TV(pi, q)` are added to the step
record (docs/metrics.md). The engine calls the audit after a step's clock stopped, so it never
counts in any timing; it costs O(V log V) per position for Cactus.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from specbench_cli.engine import StepRecord
    from specbench_cli.strategies import Strategy


class DivergenceAudit:
    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy

    def __call__(self, record: StepRecord, target_probs: torch.Tensor,
                 draft_probs: torch.Tensor | None, draft_tokens: list[int]) -> None:  # fmt: skip
        """Add one step's KL and TV; `target_probs` `[n+1, V]`, `draft_probs` `[n, V]` or None
        (one-hot drafts), `draft_tokens` the n drafted ids."""
        for j in range(min(record.accepted + 1, len(draft_tokens))):
            q = target_probs[j].double()
            if draft_probs is None:
                p = torch.zeros_like(q)
                p[draft_tokens[j]] = 1.0
            else:
                p = draft_probs[j].double()
            pi = self.strategy.output_distribution(q, p).double()
            mass = pi > 0
            if bool((q[mass] <= 0).any()):
                kl = math.inf
            else:
                kl = float((pi[mass] * (pi[mass] / q[mass]).log()).sum().clamp_min(0.0))
            record.kl += kl
            record.tv += float(0.5 * (pi - q).abs().sum())
            record.audited += 1
