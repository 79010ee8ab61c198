"""Typical acceptance sampling (TAS): Medusa (Cai et al. 2024) and vLLM v0
`TypicalAcceptanceSampler`; docs/strategies.md.

Owns the TAS rule, registered as "tas". Per position, with the target entropy
`H = -sum q log(q + 1e-5)` (the 1e-5 guard both implementations use, kept for parity) and
threshold `tau = min(eps, alpha * exp(-H))`, accept iff `q(x) > tau` (strict); `p` is unused.
On rejection emit `argmax q` (vLLM, and Medusa's default fast path). The bonus is sampled from
`q` (vLLM, default) or taken as its argmax (`bonus=argmax`, Medusa's fast path; then the bonus
row is not distributed as q and no randomness is used at all). `eps = alpha = 0` accepts every
draft with `q > 0`. Lossy: `pi(x) = p(x) 1[q(x) > tau] + R 1[x = argmax q]` with
`R = sum_y p(y) 1[q(y) <= tau]`; `supp pi` lies in `supp q`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import KernelDesc, Step, Strategy
from .inputs import as_pair
from .weights import gather_rows, sample_from_weights

BONUS_MODES = ("sample", "argmax")
TAU_RTOL = 1e-5  # |q(x) - tau|: tau carries the float32 entropy sum's rounding (V terms)


def thresholds(q: Tensor, eps: float, alpha: float) -> Tensor:
    """tau `[...]` for target rows `[..., V]`, evaluated like vLLM (float32 in verify)."""
    entropy = -torch.log(q + 1e-5).mul_(q).sum(-1)  # in place: one [..., V] temporary
    return torch.clamp(torch.exp(-entropy) * alpha, max=eps)


class TypicalAcceptance(Strategy):
    """Typical acceptance (Medusa/vLLM): accept drafts whose target prob beats a threshold."""

    name = "tas"
    PARAMS = {"eps": 0.09, "alpha": 0.3, "bonus": "sample"}
    EXAMPLES = ("", "bonus=argmax")

    def check_params(self) -> None:
        eps, alpha, bonus = self.params["eps"], self.params["alpha"], self.params["bonus"]
        self._require(eps >= 0.0, f"eps must be >= 0, got {eps}")
        self._require(alpha >= 0.0, f"alpha must be >= 0, got {alpha}")
        self._require(bonus in BONUS_MODES, f"bonus must be one of {BONUS_MODES}, got {bonus!r}")

    @property
    def uses_noise(self) -> bool:
        return self.params["bonus"] == "sample"

    @property
    def kernel(self) -> KernelDesc:
        p = self.params
        return KernelDesc(policy=2, tas_eps=p["eps"], tas_alpha=p["alpha"],
                          bonus_argmax=p["bonus"] == "argmax", scans_rows=True)  # fmt: skip

    def sampled_final(self, is_bonus: bool) -> bool:
        return is_bonus and self.uses_noise  # corrections are the argmax of q

    def decided_by_rounding(self, q_row: Tensor, x: int, p_x: float, u: float) -> bool:
        tau = float(thresholds(q_row.float()[None], self.params["eps"], self.params["alpha"])[0])
        q_x = float(q_row[x])
        return abs(q_x - tau) <= TAU_RTOL * max(q_x, tau)

    def accept(self, step: Step) -> Tensor:
        k = step.draft_tokens.shape[1]
        tau = thresholds(step.target_probs[:, :k], self.params["eps"], self.params["alpha"])
        return step.q_x > tau

    def emit(self, step: Step, num_accepted: Tensor, is_bonus: Tensor) -> Tensor:
        q_a = gather_rows(step.target_probs, num_accepted)  # [B, V]
        token = q_a.argmax(-1)
        if self.uses_noise and bool(is_bonus.any()):
            token = torch.where(is_bonus, sample_from_weights(q_a, step.final), token)
        return token

    def _kept(self, q: Tensor) -> Tensor:
        # decide in float32, exactly as verify does
        q32 = q.float()
        return q32 > thresholds(q32, self.params["eps"], self.params["alpha"])

    def output_distribution(self, q: Tensor, p: Tensor) -> Tensor:
        q, p = as_pair(q, p)
        kept = self._kept(q)
        pi = torch.where(kept, p, 0.0)
        pi[q.float().argmax()] += float(p[~kept].sum())
        return pi

    def acceptance_probability(self, q: Tensor, p: Tensor) -> float:
        q, p = as_pair(q, p)
        return float(p[self._kept(q)].sum())
