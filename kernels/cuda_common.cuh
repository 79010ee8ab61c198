// specbench CUDA kernels: launch constants, per-request plan types, weight access and the
// block-wide primitives (sums, prefix scans, fixed-point search, row sampling, output writing)
// that lazy_kernel and scan_kernel in verify_cuda.cu share. Included by that file alone (and by
// tests/cuda_emu.cpp through it); torch-free like the rest of kernels/.
#pragma once

#include <stdint.h>

#include "verify.h"

namespace specbench {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kItems = 16;
constexpr int64_t kTile = kThreads * kItems;  // tokens per CTA tile
constexpr unsigned kFull = 0xffffffffu;
static_assert(kThreads == 256, "block_kth_largest uses one histogram bin per thread");

enum WeightKind : int32_t { kWQ = 0, kWSps, kWCactus, kWTopk };

struct RowPlan {
  int64_t n;       // real drafts of this request
  int64_t pos;     // first rejected position, or n
  int64_t row;     // row of q (and p) that gives the final token
  int64_t draft;   // draft token at `row` (residual weights), -1 otherwise
  int32_t weights;
  int32_t bad;     // invalid draft id or num_drafts: the row is reported as an error
  float cactus_h, cactus_scale, topk_theta;
};

struct TilePartial {  // 16 bytes: the exact fixed-point mass of one tile
  unsigned long long mass;
  unsigned long long unused;
};

struct RowResult {  // 16 bytes
  int32_t accept;
  int32_t valid;
  long long token;
};

struct ScoreIdx {  // a value and its index, for argmax reductions
  float s;
  int64_t i;
};

__device__ __forceinline__ float weight_at(const RowPlan& pl, const VerifyArgs& a, const float* q,
                                           const float* p, int64_t i) {
  const float qv = q[i];
  if (pl.weights == kWQ) return qv;
  const float pv = p ? p[i] : (i == pl.draft ? 1.0f : 0.0f);
  switch (pl.weights) {
    case kWSps:
      return relu_sub(qv, pv);
    case kWCactus:
      return i == pl.draft ? relu_sub(pl.cactus_h, pv) : cactus_weight(pl.cactus_scale, qv, pv);
    default:  // kWTopk
      return relu_sub(qv > 0.0f && qv >= pl.topk_theta ? 1.0f : 0.0f, pv);
  }
}

__device__ __forceinline__ const float* row_q(const VerifyArgs& a, int64_t b, int64_t row) {
  return a.target + (b * (a.k + 1) + row) * a.V;
}

__device__ __forceinline__ const float* row_p(const VerifyArgs& a, const RowPlan& pl, int64_t b) {
  return (pl.weights != kWQ && a.draft) ? a.draft + (b * a.k + pl.row) * a.V : nullptr;
}

// ---------------------------------------------------------------------------------------------
// Block-wide primitives (all threads of the block must call them; they end with a barrier).

template <class T>
__device__ T block_sum(T v, T* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(kFull, v, o);
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kWarps ? sh[lane] : T(0);
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(kFull, v, o);
    if (lane == 0) sh[kWarps] = v;
  }
  __syncthreads();
  v = sh[kWarps];
  __syncthreads();
  return v;
}

// Best (value, index) of a warp, in lane 0 (value descending, then lowest index).
__device__ __forceinline__ ScoreIdx warp_best(ScoreIdx v) {
  for (int o = 16; o > 0; o >>= 1) {
    const float s = __shfl_down_sync(kFull, v.s, o);
    const int64_t i = __shfl_down_sync(kFull, v.i, o);
    if (argmax_better(s, i, v.s, v.i)) v = ScoreIdx{s, i};
  }
  return v;
}

__device__ ScoreIdx block_best(ScoreIdx v, float* shs, int64_t* shi) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_best(v);
  if (lane == 0) {
    shs[warp] = v.s;
    shi[warp] = v.i;
  }
  __syncthreads();
  if (warp == 0) {
    v = warp_best(lane < kWarps ? ScoreIdx{shs[lane], shi[lane]} : ScoreIdx{-INFINITY, INT64_MAX});
    if (lane == 0) {
      shs[kWarps] = v.s;
      shi[kWarps] = v.i;
    }
  }
  __syncthreads();
  v = ScoreIdx{shs[kWarps], shi[kWarps]};
  __syncthreads();
  return v;
}

// Exclusive prefix of v over the block in thread order; *total gets the block sum.
__device__ unsigned long long block_excl_scan(unsigned long long v, unsigned long long* sh,
                                              unsigned long long* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  unsigned long long x = v;
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned long long y = __shfl_up_sync(kFull, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) sh[warp] = x;
  __syncthreads();
  if (warp == 0) {
    unsigned long long w = lane < kWarps ? sh[lane] : 0ull;
    for (int o = 1; o < 32; o <<= 1) {
      const unsigned long long y = __shfl_up_sync(kFull, w, o);
      if (lane >= o) w += y;
    }
    if (lane < kWarps) sh[lane] = w;
  }
  __syncthreads();
  const unsigned long long before = warp > 0 ? sh[warp - 1] : 0ull;
  *total = sh[kWarps - 1];
  __syncthreads();
  return before + x - v;
}

struct Shared {
  RowPlan plan;
  unsigned long long u[kWarps + 1];
  double d[kWarps + 1];
  float s[kWarps + 1];
  int64_t i[kWarps + 1];
  unsigned int hist[256];
  int64_t found;
  unsigned long long rest;
  int last;
};

// First index in [begin, end) whose inclusive fixed-point prefix (from begin) exceeds t;
// requires t < mass of the range. Threads own contiguous runs of kItems tokens.
__device__ int64_t block_icdf_find(const RowPlan& pl, const VerifyArgs& a, const float* q,
                                   const float* p, int64_t begin, int64_t end,
                                   unsigned long long t, Shared& sh) {
  for (int64_t seg = begin; seg < end; seg += kTile) {
    const int64_t lo = seg + static_cast<int64_t>(threadIdx.x) * kItems;
    const int64_t hi = min(lo + kItems, end);
    unsigned long long own = 0;
    for (int64_t i = lo; i < hi; ++i) own += fixed_weight(weight_at(pl, a, q, p, i));
    unsigned long long segtot;
    const unsigned long long excl = block_excl_scan(own, sh.u, &segtot);
    if (t < segtot) {
      if (excl <= t && t < excl + own) {
        unsigned long long acc = excl;
        for (int64_t i = lo; i < hi; ++i) {
          acc += fixed_weight(weight_at(pl, a, q, p, i));
          if (acc > t) {
            sh.found = i;
            break;
          }
        }
      }
      __syncthreads();
      const int64_t r = sh.found;
      __syncthreads();
      return r;
    }
    t -= segtot;
  }
  return end - 1;  // unreachable when t < mass
}

struct Sampled {
  int64_t token;
  bool any;  // whether any weight was positive (else the token is meaningless)
};

// Samples the final token from the weights of plan `pl` over the whole row with one CTA, with the
// request's final draw (philox.h).
// (Returned by value, not through a pointer to a local, which would live in local memory.)
__device__ Sampled block_sample_row(const RowPlan& pl, const VerifyArgs& a, int64_t b,
                                    Shared& sh) {
  const float* q = row_q(a, b, pl.row);
  const float* p = row_p(a, pl, b);
  unsigned long long m = 0;
  for (int64_t i = threadIdx.x; i < a.V; i += kThreads) m += fixed_weight(weight_at(pl, a, q, p, i));
  const unsigned long long total = block_sum(m, sh.u);
  if (total == 0) return Sampled{0, false};
  const uint64_t t = icdf_target(final_draw(a.seeds[b], a.counters[b]), total);
  return Sampled{block_icdf_find(pl, a, q, p, 0, a.V, t, sh), true};
}

// Sample with the empty-residual fallback to q (docs/randomness.md).
__device__ int64_t block_sample_with_fallback(RowPlan pl, const VerifyArgs& a, int64_t b,
                                              Shared& sh) {
  const Sampled first = block_sample_row(pl, a, b, sh);
  if (first.any || pl.weights == kWQ) return first.token;
  pl.weights = kWQ;
  return block_sample_row(pl, a, b, sh).token;
}

__device__ void write_outputs(const VerifyArgs& a, int64_t b, const RowPlan& pl, int64_t token) {
  const int64_t k = a.k;
  const int64_t* x = a.draft_tokens + b * k;
  for (int64_t j = threadIdx.x; j <= k; j += kThreads) {
    int64_t v;
    if (pl.bad) v = -1;
    else if (j < pl.pos) v = x[j];
    else if (j == pl.pos) v = token;
    else v = -1;
    a.tokens[b * (k + 1) + j] = v;
  }
  if (threadIdx.x == 0) a.num_accepted[b] = pl.bad ? -1 : pl.pos;
}

// Validates num_drafts and the draft ids of request b (whole block); returns n, sets *bad.
__device__ int64_t block_validate(const VerifyArgs& a, int64_t b, Shared& sh, int32_t* bad) {
  int64_t n = a.num_drafts ? a.num_drafts[b] : a.k;
  int flag = (n < 0 || n > a.k) ? 1 : 0;
  n = n < 0 ? 0 : (n > a.k ? a.k : n);
  const int64_t* x = a.draft_tokens + b * a.k;
  unsigned long long badc = 0;
  for (int64_t j = threadIdx.x; j < n; j += kThreads) badc += (x[j] < 0 || x[j] >= a.V) ? 1 : 0;
  badc = block_sum(badc, sh.u);
  *bad = (flag || badc) ? 1 : 0;
  return n;
}

}  // namespace
}  // namespace specbench
