"""Logit processing shared by target and draft (docs/engine.md).

raw logits -> temperature -> top-k -> top-p -> softmax in float32. Temperature 0 is greedy mode:
the distributions become one-hot at the argmax of the raw float32 logits (lowest id on ties),
which is exactly what the autoregressive greedy baseline picks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def process_logits(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """Warp logits [..., V] (any float dtype) into float32 logits with -inf outside top-k/top-p."""
    x = logits.float()
    if cfg.greedy:
        return x
    if cfg.temperature != 1.0:
        x = x / cfg.temperature
    if cfg.top_k and cfg.top_k < x.shape[-1]:
        kth = torch.topk(x, cfg.top_k, dim=-1).values[..., -1:]
        x = x.masked_fill(x < kth, float("-inf"))
    if cfg.top_p < 1.0:
        sorted_x, order = torch.sort(x, dim=-1, descending=True)
        cum = sorted_x.softmax(-1).cumsum(-1)
        # drop a token when the mass of the tokens strictly before it already reaches top_p
        drop_sorted = (cum - sorted_x.softmax(-1)) >= cfg.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        x = x.masked_fill(drop, float("-inf"))
    return x


def to_probs(processed: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """Float32 probabilities from processed logits; one-hot at the argmax in greedy mode."""
    if cfg.greedy:
        out = torch.zeros_like(processed)
        return out.scatter_(-1, processed.argmax(-1, keepdim=True), 1.0)
    return processed.softmax(-1)


def sample(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token id per row of probs [n, V] (`torch.multinomial`, which draws V exponential
    variates per row from `generator`)."""
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
