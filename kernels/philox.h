// specbench verification noise: counter-based randomness shared by the CPU twin and the CUDA
// kernels (torch-free; __host__ __device__ under nvcc). The PyTorch reference computes the same
// function in specbench_cli/philox.py; docs/randomness.md states the contract.
//
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
// 128-bit counter and a 64-bit key give four 32-bit words. Row b of a step uses
//   key     = seeds[b] (two 32-bit halves, low first)
//   counter = (slot, stream, counters[b] low 32 bits, counters[b] high 32 bits)
// stream 0 holds the accept uniforms (slot j / 4, word j % 4 for draft position j), stream 1
// slot 0 the final-token draw (words 1:0 as one 64-bit integer). A row's noise therefore depends
// on its (seed, counter) only: not on its batch position, the batch size, tiling or device.
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define SB_RNG_HD __host__ __device__ __forceinline__
#else
#define SB_RNG_HD inline
#endif

namespace specbench {

struct Words4 {
  uint32_t w[4];
};

// One 32x32 -> 64-bit product, split into high and low words.
SB_RNG_HD void mulhilo32(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}

// Philox4x32 with 10 rounds; the key is bumped between rounds (Random123's philox4x32_R).
SB_RNG_HD Words4 philox4x32_10(Words4 c, uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo32(0xD2511F53u, c.w[0], &hi0, &lo0);
    mulhilo32(0xCD9E8D57u, c.w[2], &hi1, &lo1);
    const Words4 n = {{hi1 ^ c.w[1] ^ k0, lo1, hi0 ^ c.w[3] ^ k1, lo0}};
    c = n;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

enum NoiseStream : uint32_t { kStreamAccept = 0, kStreamFinal = 1 };

SB_RNG_HD Words4 noise_block(int64_t seed, int64_t counter, uint32_t stream, uint32_t slot) {
  const uint64_t s = static_cast<uint64_t>(seed), c = static_cast<uint64_t>(counter);
  const Words4 ctr = {{slot, stream, static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32)}};
  return philox4x32_10(ctr, static_cast<uint32_t>(s), static_cast<uint32_t>(s >> 32));
}

// A float32 uniform in [0, 1) from the top 24 bits of a word: exact, a multiple of 2^-24.
SB_RNG_HD float uniform24(uint32_t w) {
  return static_cast<float>(w >> 8) * 5.9604644775390625e-8f;  // 2^-24, an exact scale
}

// Accept uniform of draft position j.
SB_RNG_HD float accept_uniform(int64_t seed, int64_t counter, int64_t j) {
  const Words4 b = noise_block(seed, counter, kStreamAccept, static_cast<uint32_t>(j >> 2));
  // selects, not b.w[j & 3]: a dynamic index would put the block in local memory on the GPU
  const uint32_t lo = (j & 1) ? b.w[1] : b.w[0], hi = (j & 1) ? b.w[3] : b.w[2];
  return uniform24((j & 2) ? hi : lo);
}

// The 64-bit draw that picks the emitted token (fixed-point inverse CDF, verify.h).
SB_RNG_HD uint64_t final_draw(int64_t seed, int64_t counter) {
  const Words4 b = noise_block(seed, counter, kStreamFinal, 0);
  return (static_cast<uint64_t>(b.w[1]) << 32) | b.w[0];
}

}  // namespace specbench
