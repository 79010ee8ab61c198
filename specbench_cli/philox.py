"""Philox4x32-10 and the exact integer helpers of the verification noise, in torch int64.

The reference computes, tensor-wide, exactly the function the kernels compute in
`kernels/philox.h` (Salmon et al., SC 2011; Random123's `philox4x32_R` with 10 rounds). Every
32-bit word is held in an int64 tensor in [0, 2^32); products are split so that no intermediate
leaves the int64 range (signed overflow is never relied on). docs/randomness.md states how the
words become a step's noise.
"""

from __future__ import annotations

import torch
from torch import Tensor

MASK32 = 0xFFFFFFFF
MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
KEY_BUMPS = (0x9E3779B9, 0xBB67AE85)
ROUNDS = 10


def mulhilo32(a: Tensor, m: int | Tensor) -> tuple[Tensor, Tensor]:
    """High and low 32-bit words of `a * m` for 32-bit `a` and `m`, via 16-bit halves of `a`."""
    high_half, low_half = (a >> 16) * m, (a & 0xFFFF) * m  # each < 2^48
    mid = high_half + (low_half >> 16)  # a * m = mid * 2^16 + (low_half mod 2^16)
    return mid >> 16, ((mid & 0xFFFF) << 16) | (low_half & 0xFFFF)


def philox4x32_10(counter: Tensor, key: Tensor) -> Tensor:
    """Philox4x32-10 of `counter` `[..., 4]` under `key` `[..., 2]` (words in [0, 2^32), int64,
    broadcastable); returns `[..., 4]` words.

    A round is `(c0, c1, c2, c3) -> (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1,
    lo(M0 c0))`, then the key is bumped. Words 0 and 2 (multiplied) and 1 and 3 (xored) are held
    as pairs along a new leading dimension, so that a round is a handful of tensor operations."""
    # same shapes everywhere: a broadcasting integer xor is a slow path on CPU (~100x)
    c0, c1, c2, c3, k0, k1 = torch.broadcast_tensors(*counter.unbind(-1), *key.unbind(-1))
    shape = (2,) + (1,) * c0.ndim
    multipliers = torch.tensor(MULTIPLIERS, device=counter.device).view(shape)
    bumps = torch.tensor(KEY_BUMPS, device=counter.device).view(shape).expand(2, *c0.shape)
    mul, xor, k = torch.stack([c0, c2]), torch.stack([c1, c3]), torch.stack([k0, k1])
    bumps = bumps.contiguous()
    for _ in range(ROUNDS):
        hi, lo = mulhilo32(mul, multipliers)
        mul, xor = hi.flip(0) ^ xor ^ k, lo.flip(0)
        k = (k + bumps) & MASK32
    return torch.stack([mul[0], xor[0], mul[1], xor[1]], -1)


def split64(x: Tensor) -> tuple[Tensor, Tensor]:
    """Low and high 32-bit words of int64 values read as unsigned 64-bit integers."""
    return x & MASK32, (x >> 32) & MASK32


def mulhi64(r: Tensor, total: Tensor) -> Tensor:
    """`floor(r * total / 2^64)` for `r` an unsigned 64-bit integer held in int64 and
    `0 <= total < 2^62`: the fixed-point inverse-CDF target, always `< total`."""
    r0, r1 = split64(r)
    t0, t1 = split64(total)  # t1 < 2^30
    h10, l10 = mulhilo32(r1, t0)
    h01, l01 = mulhilo32(r0, t1)
    h00 = mulhilo32(r0, t0)[0]
    carry = (l10 + l01 + h00) >> 32  # the three middle terms, each < 2^32
    return r1 * t1 + h10 + h01 + carry
