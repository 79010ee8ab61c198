// specbench CPU twin: vectorisable scans over one row (torch-free, header-only, included by
// verify_cpu.cpp alone): value checks, maxima and first indices, fixed-point sums held exactly in
// fp64, the shared sb_logf of verify.h, and the normalizer of a logits row. Every result that
// decides a token is exact and independent of blocking.
#pragma once

#include "verify.h"

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__SSE__)
#include <immintrin.h>
#endif

namespace specbench {
namespace cpu {

// Hot loops get an AVX2 clone chosen at load time (ifunc); the build itself stays x86-64-v2 so a
// cached binary runs on any CI or dev machine. No FMA is enabled, so results are identical.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SB_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SB_CLONES
#endif

constexpr int64_t kChunk = 4096;  // vocabulary chunk per work item
constexpr int kBlk = 64;          // inner block for vectorisable loops

inline float block_max(const float* s) {  // max of kBlk values (no NaN by construction)
#if defined(__SSE__)
  __m128 m0 = _mm_loadu_ps(s), m1 = _mm_loadu_ps(s + 4), m2 = _mm_loadu_ps(s + 8),
         m3 = _mm_loadu_ps(s + 12);
  for (int i = 16; i < kBlk; i += 16) {
    m0 = _mm_max_ps(m0, _mm_loadu_ps(s + i));
    m1 = _mm_max_ps(m1, _mm_loadu_ps(s + i + 4));
    m2 = _mm_max_ps(m2, _mm_loadu_ps(s + i + 8));
    m3 = _mm_max_ps(m3, _mm_loadu_ps(s + i + 12));
  }
  m0 = _mm_max_ps(_mm_max_ps(m0, m1), _mm_max_ps(m2, m3));
  alignas(16) float t[4];
  _mm_store_ps(t, m0);
  return std::max(std::max(t[0], t[1]), std::max(t[2], t[3]));
#else
  float m = s[0];
  for (int i = 1; i < kBlk; ++i) m = s[i] > m ? s[i] : m;
  return m;
#endif
}

// Sum of fixed_weight(w[i]) over len <= kBlk values, vectorised: trunc(w * 2^44) is an exact
// integer in fp32 and any sum of kBlk of them (< 2^50) is exact in fp64, in any order.
inline double block_fixed_mass(const float* w, int len) {
  int i = 0;
  double total = 0.0;
#if defined(__SSE4_1__)
  const __m128 scale = _mm_set1_ps(17592186044416.0f), zero = _mm_setzero_ps();
  __m128d acc0 = _mm_setzero_pd(), acc1 = _mm_setzero_pd();
  for (; i + 4 <= len; i += 4) {
    const __m128 v = _mm_loadu_ps(w + i);
    __m128 t = _mm_round_ps(_mm_mul_ps(v, scale), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    t = _mm_and_ps(t, _mm_cmpgt_ps(v, zero));
    acc0 = _mm_add_pd(acc0, _mm_cvtps_pd(t));
    acc1 = _mm_add_pd(acc1, _mm_cvtps_pd(_mm_movehl_ps(t, t)));
  }
  acc0 = _mm_add_pd(acc0, acc1);
  alignas(16) double lanes[2];
  _mm_store_pd(lanes, acc0);
  total = lanes[0] + lanes[1];
#endif
  for (; i < len; ++i) total += static_cast<double>(fixed_weight(w[i]));
  return total;
}

// Sum of entropy_term_fixed(q[i], lg[i]) over len <= kBlk values, vectorised the same way:
// each term is an integer of magnitude < 2^39 held exactly in fp64, and their sum is exact.
inline double block_entropy_fixed(const float* q, const float* lg, int len) {
  int i = 0;
  double total = 0.0;
#if defined(__SSE4_1__)
  const __m128d scale = _mm_set1_pd(-1099511627776.0), zero = _mm_setzero_pd();
  __m128d acc = _mm_setzero_pd();
  for (; i + 2 <= len; i += 2) {
    const __m128d qd = _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64(
        reinterpret_cast<const __m128i*>(q + i))));
    const __m128d ld = _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64(
        reinterpret_cast<const __m128i*>(lg + i))));
    // -(q * lg) * 2^40 == (q * lg) * -2^40 exactly (negation and power-of-two scale are exact)
    __m128d t = _mm_round_pd(_mm_mul_pd(_mm_mul_pd(qd, ld), scale),
                             _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    t = _mm_and_pd(t, _mm_cmpgt_pd(qd, zero));
    acc = _mm_add_pd(acc, t);
  }
  alignas(16) double lanes[2];
  _mm_store_pd(lanes, acc);
  total = lanes[0] + lanes[1];
#endif
  for (; i < len; ++i) total += static_cast<double>(entropy_term_fixed(q[i], lg[i]));
  return total;
}

// Running argmax over consecutive blocks: folds in xb[0, len), which starts at index s, keeping
// the first index of the maximum (torch.argmax semantics for finite input).
struct Argmax {
  float best = 0.0f;
  int64_t index = -1;

  inline void add_block(const float* xb, int len, int64_t s) {
    alignas(16) float buf[kBlk];
    const float* src = xb;
    if (len < kBlk) {  // pad with a value already in the block: the maximum is unchanged
      for (int i = 0; i < len; ++i) buf[i] = xb[i];
      for (int i = len; i < kBlk; ++i) buf[i] = xb[0];
      src = buf;
    }
    const float m = block_max(src);
    if (index < 0 || m > best) {
      int i = 0;
      while (i + 1 < len && xb[i] != m) ++i;  // bounded: a NaN (unchecked input) matches nothing
      best = m;
      index = s + i;
    }
  }
};

// Lowest index of the maximum of a row.
SB_CLONES int64_t argmax_row(const float* x, int64_t V) {
  Argmax am;
  for (int64_t s = 0; s < V; s += kBlk)
    am.add_block(x + s, static_cast<int>(std::min<int64_t>(kBlk, V - s)), s);
  return am.index;
}

// Entropy (fixed point) and argmax of q[begin, end) in one pass: returns the range's part of the
// fixed-point entropy sum (integer, so parts add up exactly in any order); *amax is the lowest
// index of the range's maximum and *vmax that maximum.
SB_CLONES int64_t entropy_argmax_range(const float* q, int64_t begin, int64_t end, int64_t* amax,
                                       float* vmax) {
  alignas(16) float lg[kBlk];
  int64_t h = 0;
  Argmax am;
  for (int64_t s = begin; s < end; s += kBlk) {
    const int len = static_cast<int>(std::min<int64_t>(kBlk, end - s));
    const float* qb = q + s;
    for (int i = 0; i < len; ++i) lg[i] = entropy_log(qb[i]);
    h += static_cast<int64_t>(block_entropy_fixed(qb, lg, len));
    am.add_block(qb, len, s);
  }
  *amax = am.index;
  *vmax = am.best;
  return h;
}

// Value check of one probability row: no value negative or NaN, and, for a row that takes part
// in the step (`live`), a sum within kSumTol of 1 (an infinite value fails it). The sum runs in
// kBlk fp32 lanes (element-wise adds, which vectorize), then in fp64: far below the tolerance in
// error.
SB_CLONES bool probs_row_ok(const float* v, int64_t V, bool live) {
  alignas(16) float lanes[kBlk] = {};
  alignas(16) int32_t bad[kBlk] = {};
  int64_t s = 0;
  for (; s + kBlk <= V; s += kBlk) {
    for (int i = 0; i < kBlk; ++i) {
      lanes[i] += v[s + i];
      bad[i] |= !(v[s + i] >= 0.0f);
    }
  }
  for (int i = 0; s + i < V; ++i) {
    lanes[i] += v[s + i];
    bad[i] |= !(v[s + i] >= 0.0f);
  }
  double total = 0.0;
  int32_t any = 0;
  for (int i = 0; i < kBlk; ++i) {
    total += lanes[i];
    any |= bad[i];
  }
  const double off = total - 1.0;
  return !any && (!live || (off <= kSumTol && off >= -kSumTol));
}

// Value check of one logits row: no NaN, and when sampling (temperature > 0) a finite maximum
// (an infinite or all -inf row has no softmax). Element-wise lanes again, so that it vectorizes.
SB_CLONES bool logits_row_ok(const float* l, int64_t V, bool sampling) {
  alignas(16) float hi[kBlk];
  alignas(16) int32_t nan[kBlk] = {};
  std::fill(hi, hi + kBlk, -INFINITY);
  for (int64_t s = 0; s < V; s += kBlk) {
    const int len = static_cast<int>(std::min<int64_t>(kBlk, V - s));
    for (int i = 0; i < len; ++i) {
      nan[i] |= l[s + i] != l[s + i];
      hi[i] = l[s + i] > hi[i] ? l[s + i] : hi[i];
    }
  }
  float top = -INFINITY;
  int32_t any = 0;
  for (int i = 0; i < kBlk; ++i) {
    top = hi[i] > top ? hi[i] : top;
    any |= nan[i];
  }
  return !any && (!sampling || (top > -INFINITY && top < INFINITY));
}

// K-th largest value of a row (K clamped to [1, V]).
SB_CLONES float kth_largest(const float* q, int64_t V, int64_t K, std::vector<float>* scratch) {
  K = std::max<int64_t>(1, std::min(K, V));
  if (K <= 32) {
    float top[32];
    int64_t c = 0;
    for (int64_t i = 0; i < V; ++i) {
      const float v = q[i];
      if (c == K && !(v > top[K - 1])) continue;
      int64_t j = c < K ? c++ : K - 1;
      while (j > 0 && top[j - 1] < v) {
        top[j] = top[j - 1];
        --j;
      }
      top[j] = v;
    }
    return top[K - 1];
  }
  scratch->assign(q, q + V);
  std::nth_element(scratch->begin(), scratch->begin() + (K - 1), scratch->end(),
                   [](float x, float y) { return x > y; });
  return (*scratch)[K - 1];
}

// Normalizer of one logits row (verify.h, logits mode): processed maximum and its lowest index,
// the top-k threshold and the exact fixed-point sum of the kept exponentials, which `exps`
// (V floats, or null) receives (0 for tokens outside the top k). `scratch` holds the processed
// row when top-k is on.
SB_CLONES LogitRow logit_row(const float* l, int64_t V, float temperature, int64_t top_k,
                             std::vector<float>* scratch, float* exps) {
  alignas(16) float x[kBlk];
  Argmax am;
  for (int64_t s = 0; s < V; s += kBlk) {
    const int len = static_cast<int>(std::min<int64_t>(kBlk, V - s));
    for (int i = 0; i < len; ++i) x[i] = processed_logit(l[s + i], temperature);
    am.add_block(x, len, s);
  }
  LogitRow r{am.best, 1.0f, -INFINITY, am.index};
  if (temperature == 0.0f) return r;  // greedy: one-hot at the argmax
  if (top_k > 0 && top_k < V) {
    scratch->resize(static_cast<size_t>(V));
    for (int64_t i = 0; i < V; ++i) (*scratch)[i] = processed_logit(l[i], temperature);
    std::vector<float> select;
    r.kth = kth_largest(scratch->data(), V, top_k, &select);
  }
  uint64_t z = 0;
  for (int64_t s = 0; s < V; s += kBlk) {
    const int len = static_cast<int>(std::min<int64_t>(kBlk, V - s));
    for (int i = 0; i < len; ++i) {
      const float xi = processed_logit(l[s + i], temperature);
      x[i] = xi >= r.kth ? sb_expf(SB_SUB(xi, r.max)) : 0.0f;
    }
    z += static_cast<uint64_t>(block_fixed_mass(x, len));
    if (exps) std::copy(x, x + len, exps + s);
  }
  r.zf = z_to_float(z);
  return r;
}

// Turns the exponentials logit_row wrote into the row's probabilities, in place (verify.h
// logit_prob: e / zf; temperature 0: one-hot at the argmax).
SB_CLONES void exps_to_probs(float* row, int64_t V, const LogitRow& r, bool greedy) {
  if (greedy) {
    std::fill(row, row + V, 0.0f);
    row[r.argmax < 0 ? 0 : r.argmax] = 1.0f;
    return;
  }
  const float zf = r.zf;
  for (int64_t i = 0; i < V; ++i) row[i] = SB_DIV(row[i], zf);
}

}  // namespace cpu
}  // namespace specbench
