"""The verification noise (docs/randomness.md): Philox4x32-10 against Random123's published
known-answer vectors in Python (`specbench_cli/philox.py`) and in C++ (`kernels/philox.h`,
compiled here with g++), the two implementations against each other on random inputs, the exact
64-bit inverse-CDF target, and the contract of `Noise`: one seed per call from a generator, rows
whose noise depends on their own (seed, counter) only.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from specbench_cli.noise import Noise
from specbench_cli.philox import mulhi64, philox4x32_10

REPO = Path(__file__).resolve().parents[1]

# Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter (4 words), key (2 words),
# expected output (4 words).
KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]  # fmt: skip

CPP_DRIVER = r"""
#include <cinttypes>
#include <cstdio>
#include "philox.h"
// stdin: lines "c0 c1 c2 c3 k0 k1" (hex); stdout: the four output words (hex), then the
// accept uniform of position (c0 % 16) and the final draw for seed k1:k0, counter c3:c2.
int main() {
  unsigned c[4], k[2];
  while (std::scanf("%x %x %x %x %x %x", &c[0], &c[1], &c[2], &c[3], &k[0], &k[1]) == 6) {
    const specbench::Words4 out = specbench::philox4x32_10({{c[0], c[1], c[2], c[3]}}, k[0], k[1]);
    const int64_t seed = static_cast<int64_t>((uint64_t{k[1]} << 32) | k[0]);
    const int64_t counter = static_cast<int64_t>((uint64_t{c[3]} << 32) | c[2]);
    std::printf("%08x %08x %08x %08x %a %016" PRIx64 "\n", out.w[0], out.w[1], out.w[2],
                out.w[3], specbench::accept_uniform(seed, counter, c[0] % 16),
                specbench::final_draw(seed, counter));
  }
}
"""


def test_python_philox_known_answers() -> None:
    for counter, key, expected in KAT:
        out = philox4x32_10(torch.tensor(counter), torch.tensor(key))
        assert out.tolist() == list(expected)


@pytest.fixture(scope="module")
def cpp_philox(tmp_path_factory) -> Path:
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    folder = tmp_path_factory.mktemp("philox")
    (folder / "driver.cpp").write_text(CPP_DRIVER)
    exe = folder / "driver"
    cmd = [cxx, "-std=c++17", "-O2", "-ffp-contract=off", "-I", str(REPO / "kernels"),
           str(folder / "driver.cpp"), "-o", str(exe)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


def _run_cpp(exe: Path, rows: list[tuple[int, ...]]) -> list[list[str]]:
    text = "".join(" ".join(f"{v:08x}" for v in row) + "\n" for row in rows)
    done = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True)
    return [line.split() for line in done.stdout.splitlines()]


def test_cpp_philox_known_answers(cpp_philox: Path) -> None:
    got = _run_cpp(cpp_philox, [(*counter, *key) for counter, key, _ in KAT])
    assert [[int(w, 16) for w in line[:4]] for line in got] == [list(e) for _, _, e in KAT]


def test_cpp_and_python_noise_agree(cpp_philox: Path) -> None:
    """Words, accept uniforms and final draws, bit for bit, on random counters and keys."""
    rng = random.Random(7)
    rows = [tuple(rng.getrandbits(32) for _ in range(6)) for _ in range(300)]
    got = _run_cpp(cpp_philox, rows)
    t = torch.tensor(rows)
    words = philox4x32_10(t[:, :4], t[:, 4:])
    assert [[int(w, 16) for w in line[:4]] for line in got] == words.tolist()
    seeds = (t[:, 5] << 32) | t[:, 4]  # wraps to the signed pattern, as int64 does in C++
    noise = Noise(seeds, (t[:, 3] << 32) | t[:, 2])
    uniforms = noise.accept_uniforms(16)
    for b, line in enumerate(got):
        assert float.fromhex(line[4]) == float(uniforms[b, rows[b][0] % 16])
        assert int(line[5], 16) == int(noise.final_draws()[b]) % 2**64


def test_mulhi64_is_exact() -> None:
    rng = random.Random(3)
    r = [rng.getrandbits(64) for _ in range(5000)] + [0, 2**64 - 1]
    total = [1 + rng.getrandbits(rng.randint(1, 61)) for _ in range(5000)] + [2**62 - 1, 1]
    signed = torch.tensor([v - 2**64 if v >= 2**63 else v for v in r])
    got = mulhi64(signed, torch.tensor(total)).tolist()
    assert got == [a * b >> 64 for a, b in zip(r, total, strict=True)]
    assert all(g < t for g, t in zip(got, total, strict=True))


def test_draw_takes_one_seed_and_gives_rows_their_counters() -> None:
    g, h = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    noise = Noise.draw(g, 3)
    seed = torch.randint(2**63 - 1, (1,), generator=h)
    assert noise.seeds.tolist() == [int(seed)] * 3 and noise.counters.tolist() == [0, 1, 2]
    assert torch.equal(torch.rand(5, generator=g), torch.rand(5, generator=h))  # one draw only


def test_uniforms_and_draws_follow_the_contract() -> None:
    """u_j = top 24 bits of word j % 4 of block (slot j // 4, stream 0, counter) * 2^-24; the
    final draw = words 1:0 of block (0, stream 1, counter)."""
    seeds, counters = torch.tensor([12345, -7]), torch.tensor([0, 2**40 + 3])
    noise = Noise(seeds, counters)
    u = noise.accept_uniforms(6)
    for b in range(2):
        key = torch.tensor([seeds[b] & 0xFFFFFFFF, (seeds[b] >> 32) & 0xFFFFFFFF])
        c_lo, c_hi = counters[b] & 0xFFFFFFFF, counters[b] >> 32
        for j in range(6):
            words = philox4x32_10(torch.tensor([j // 4, 0, c_lo, c_hi]), key)
            assert float(u[b, j]) == (int(words[j % 4]) >> 8) * 2.0**-24
        words = philox4x32_10(torch.tensor([0, 1, c_lo, c_hi]), key)
        assert int(noise.final_draws()[b]) % 2**64 == (int(words[1]) << 32) | int(words[0])
    assert u.dtype == torch.float32 and bool((u >= 0).all() and (u < 1).all())


def test_a_rows_noise_does_not_depend_on_its_batch_position() -> None:
    seeds, counters = torch.tensor([5, 5, 9, 1 << 62]), torch.tensor([0, 1, 7, 3])
    order = torch.tensor([2, 0, 3, 1])
    whole, shuffled = Noise(seeds, counters), Noise(seeds[order], counters[order])
    assert torch.equal(whole.accept_uniforms(8)[order], shuffled.accept_uniforms(8))
    assert torch.equal(whole.final_draws()[order], shuffled.final_draws())
    alone = Noise(seeds[2:3], counters[2:3])
    assert torch.equal(alone.accept_uniforms(8)[0], whole.accept_uniforms(8)[2])


def test_uniforms_are_uniform() -> None:
    """A smoke test of the stream's quality at our use: 24-bit uniforms over many counters."""
    noise = Noise(torch.full((200_000,), 42), torch.arange(200_000))
    u = noise.accept_uniforms(4).flatten().double()
    counts = torch.histc(u, bins=20, min=0, max=1)
    expected = u.numel() / 20
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 60  # 19 degrees of freedom: p < 1e-6 beyond ~55
    assert abs(float(u.mean()) - 0.5) < 5 * (1 / 12 / u.numel()) ** 0.5
