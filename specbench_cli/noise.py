"""Verification noise: counter-based, the same function in the reference and in every kernel.

A step's random numbers are a pure function of each row's `(seed, counter)` (Philox4x32-10,
docs/randomness.md): the accept uniform of draft position `j` and one 64-bit draw for the
emitted token. The kernels compute them where they are used; the PyTorch reference computes them
here with the same integer arithmetic, so every backend emits the same tokens. Two ways to get a
`Noise`: `Noise.draw(generator, B)` takes one seed from a torch generator per call (rows get
counters 0..B-1), and `Noise(seeds, counters)` gives each row its own stream, independent of its
batch position (the form a batched engine uses: a prompt's seed and its step counter). Both
tensors may live on the device, so a captured CUDA graph replays fresh noise when the counters
are advanced in place between replays.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Generator, Tensor

from specbench_cli.philox import MASK32, philox4x32_10, split64

STREAM_ACCEPT, STREAM_FINAL = 0, 1  # kernels/philox.h `enum NoiseStream`
SEED_HIGH = 2**63 - 1  # seeds drawn from a generator lie in [0, 2^63 - 1)


@dataclass(frozen=True)
class Noise:
    """The noise of one verification step: Philox key and step counter of each row."""

    seeds: Tensor  # [B] int64 (read as unsigned 64-bit)
    counters: Tensor  # [B] int64 (read as unsigned 64-bit)

    @classmethod
    def draw(cls, generator: Generator | None, B: int, *,
             device: torch.device | str | None = None) -> Noise:  # fmt: skip
        """One seed from `generator` (None: torch's default generator of `device`), shared by the
        B rows, which take counters 0..B-1. Runs on the generator's device without a sync."""
        device = torch.device(device if device is not None else getattr(generator, "device", "cpu"))
        seed = torch.randint(SEED_HIGH, (1,), generator=generator, device=device)
        return cls(seed.expand(B), torch.arange(B, device=device))

    def check(self, B: int) -> None:
        """`ValueError` unless this noise holds int64 seeds and counters for `B` rows."""
        for name, t in (("seeds", self.seeds), ("counters", self.counters)):
            if not isinstance(t, Tensor) or tuple(t.shape) != (B,) or t.dtype != torch.int64:
                raise ValueError(f"noise {name} must be an int64 [{B}] tensor, got "
                                 f"{getattr(t, 'dtype', type(t).__name__)} "
                                 f"{list(getattr(t, 'shape', []))}")  # fmt: skip

    def to(self, device: torch.device | str) -> Noise:
        """The same noise on `device`."""
        return Noise(self.seeds.to(device), self.counters.to(device))

    def _blocks(self, stream: Tensor, slot: Tensor) -> Tensor:
        """Philox words `[B, n, 4]` of the `n` (stream, slot) pairs, counter
        `(slot, stream, counter)` under each row's key."""
        c_lo, c_hi = split64(self.counters)
        counter = torch.stack(torch.broadcast_tensors(
            slot, stream, c_lo[:, None], c_hi[:, None]), -1)  # fmt: skip
        key = torch.stack(split64(self.seeds), -1)[:, None]  # [B, 1, 2]
        return philox4x32_10(counter, key)

    def draws(self, k: int) -> tuple[Tensor, Tensor]:
        """`(u_acc [B, k], final [B])`, from one Philox evaluation: float32 accept uniforms in
        [0, 1), multiples of 2^-24 (position `j`: word `j % 4` of stream 0, slot `j // 4`), and
        the 64-bit draws that pick the emitted token (int64 bit patterns: words 1:0 of stream 1,
        slot 0)."""
        slots = (k + 3) // 4
        stream = torch.tensor([STREAM_ACCEPT] * slots + [STREAM_FINAL], device=self.seeds.device)
        slot = torch.tensor([*range(slots), 0], device=self.seeds.device)
        words = self._blocks(stream, slot)  # [B, slots + 1, 4]
        u_acc = (words[:, :slots].flatten(1)[:, :k] >> 8).float() * 2.0**-24
        low, high = words[:, slots, 0], words[:, slots, 1]
        high = torch.where(high > MASK32 >> 1, high - (1 << 32), high)  # to the signed pattern
        return u_acc, (high << 32) | low

    def accept_uniforms(self, k: int) -> Tensor:
        """`[B, k]` accept uniforms (see `draws`)."""
        return self.draws(k)[0]

    def final_draws(self) -> Tensor:
        """`[B]` final draws (see `draws`)."""
        return self.draws(0)[1]
