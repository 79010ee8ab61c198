"""Verification noise: the random numbers of one step, drawn outside every rule and backend.

Randomness is an input, so the torch reference and the compiled kernels see the same numbers and
emit the same tokens (docs/randomness.md). Draw order from one generator: `u_acc` for all `k`
positions first (even when rows stop early, so streams stay aligned across strategies), then the
final-token noise of the chosen mode: `race` draws `e_fin = -log1p(-U)` over the vocabulary,
`icdf` one uniform per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Generator, Tensor

from specbench_cli.choices import NOISE_MODES


def check_mode(mode: object) -> str:
    if mode not in NOISE_MODES:
        raise ValueError(f"noise mode must be one of {NOISE_MODES}, got {mode!r}")
    return mode  # type: ignore[return-value]


@dataclass(frozen=True)
class Noise:
    """The noise of one verification step for `B` rows, `k` positions, vocabulary `V`."""

    u_acc: Tensor  # [B, k] float32 uniforms in [0, 1) for the accept tests
    mode: str  # "race" or "icdf"
    e_fin: Tensor | None = None  # [B, V] float32 Exp(1) variates (race mode)
    u_fin: Tensor | None = None  # [B] float32 uniforms (icdf mode)

    @classmethod
    def draw(cls, generator: Generator | None, B: int, k: int, V: int, mode: str = "race", *,
             device: torch.device | str | None = None) -> Noise:  # fmt: skip
        """Draw noise for one step; `generator=None` uses torch's global generator."""
        check_mode(mode)
        device = device if device is not None else getattr(generator, "device", "cpu")
        u_acc = torch.rand(B, k, generator=generator, device=device)
        if mode == "race":
            e_fin = torch.rand(B, V, generator=generator, device=device)
            return cls(u_acc, mode, e_fin=e_fin.neg_().log1p_().neg_())
        return cls(u_acc, mode, u_fin=torch.rand(B, generator=generator, device=device))

    def to(self, device: torch.device | str) -> Noise:
        """The same noise on `device`."""
        move = (lambda t: None if t is None else t.to(device))  # noqa: E731
        return Noise(self.u_acc.to(device), self.mode, move(self.e_fin), move(self.u_fin))

    def check(self, B: int, k: int, V: int) -> None:
        """`ValueError` unless this noise fits a step of `B` rows, `k` positions, `V` ids."""
        check_mode(self.mode)
        final, want = (self.e_fin, (B, V)) if self.mode == "race" else (self.u_fin, (B,))
        if tuple(self.u_acc.shape) != (B, k) or final is None or tuple(final.shape) != want:
            raise ValueError(f"noise must hold u_acc [{B}, {k}] and {self.mode} noise {list(want)}")
