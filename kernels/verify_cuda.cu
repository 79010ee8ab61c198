// specbench verification, CUDA kernels (torch-free: raw pointers, extern "C" launchers).
//
// Two kernels, one launch per verify call (plus check_kernel first when values are validated):
//   lazy_kernel (sps, cactus, interp): grid (tiles of 4096 tokens, B). Every CTA recomputes the
//     acceptance chain of its request with one warp (gathers and Philox accept uniforms; L2 hits
//     after the first CTA), then reduces its tile of the final row's weights to its exact
//     fixed-point mass in a workspace. The last CTA of the request (atomic ticket) combines the
//     tiles in tile order, re-scans the tile holding the request's final draw, falls back to q
//     when the residual is empty, writes the outputs and resets its ticket (CUDA-graph safe).
//     Bytes read: 2k gathered values plus the q and p rows at one position (docs/kernels.md).
//   scan_kernel (greedy, tas, topk): grid (k+1 rows, B). Each CTA computes its row's statistic
//     (argmax / entropy / rank count), its own accept decision and its candidate final token
//     (greedy and tas: argmax; topk: radix-select the K-th value, then sample the residual;
//     bonus row: sample q). The last CTA of the request picks the first rejection.
//   check_kernel (validate only): grid (rows, B), one CTA per probability (or greedy logits) row:
//     nonnegative and not NaN, rows that take part summing to 1; a failure sets flags[0] = 1.
// Seeds and step counters are read from device memory, so a captured CUDA graph replays fresh
// noise when the caller advances the counters between replays. The logits mode is not built
// here (the caller processes logits with torch first).
// All arithmetic that decides a token is the shared policy code of verify.h; compile with
// --fmad=false (no contraction) and without --use_fast_math. Results are identical to the
// CPU twin (verify_cpu.cpp) bit for bit, except TAS's threshold exp() (< 1 ulp in fp64).
#if !defined(SPECBENCH_CUDA_EMULATION)  // tests/cuda_emu.cpp runs these kernels on CPU threads
#include <cuda_runtime.h>
#endif
#include <stdint.h>

#include "cuda_common.cuh"
#include "verify.h"

namespace specbench {
namespace {

// ---------------------------------------------------------------------------------------------
// Lazy strategies: sps, cactus, interp.

// Warp 0 walks the acceptance chain (32 positions per round trip) and fills the plan.
__device__ void plan_lazy(const VerifyArgs& a, int64_t b, RowPlan* plan) {
  const int lane = threadIdx.x & 31;
  const int64_t k = a.k, V = a.V;
  int64_t n = a.num_drafts ? a.num_drafts[b] : k;
  bool bad = n < 0 || n > k;
  n = n < 0 ? 0 : (n > k ? k : n);
  const int64_t* x = a.draft_tokens + b * k;
  for (int64_t base = 0; base < n; base += 32) {
    const int64_t j = base + lane;
    const bool bj = j < n && (x[j] < 0 || x[j] >= V);
    if (__ballot_sync(kFull, bj)) bad = true;
  }
  int64_t pos = n;
  if (!bad) {
    for (int64_t base = 0; base < n; base += 32) {
      const int64_t j = base + lane;
      bool rej = false;
      if (j < n) {
        const int64_t xj = x[j];
        const float t = a.target[(b * (k + 1) + j) * V + xj];
        const float s = a.draft ? a.draft[(b * k + j) * V + xj] : 1.0f;
        const float u = accept_uniform(a.seeds[b], a.counters[b], j);
        float target = t;
        if (a.strategy == kCactus) target = cactus_row(t, a.cactus_delta).h;
        else if (a.strategy == kInterp) target = interp_mix(t, s, a.interp_lambda, a.interp_rest);
        rej = !accept_mul(u, s, target);
      }
      const unsigned m = __ballot_sync(kFull, rej);
      if (m) {
        pos = base + __ffs(m) - 1;
        break;
      }
    }
  }
  if (lane == 0) {
    RowPlan pl;
    pl.n = n;
    pl.pos = pos;
    pl.bad = bad ? 1 : 0;
    pl.cactus_h = pl.cactus_scale = pl.topk_theta = 0.0f;
    if (!bad && pos < n) {
      pl.row = pos;
      pl.draft = x[pos];
      pl.weights = a.strategy == kCactus ? kWCactus : kWSps;  // interp: SpS residual
      if (a.strategy == kCactus) {
        const CactusRow cr = cactus_row(a.target[(b * (k + 1) + pos) * V + pl.draft],
                                        a.cactus_delta);
        pl.cactus_h = cr.h;
        pl.cactus_scale = cr.scale;
      }
    } else {
      pl.row = n;
      pl.draft = -1;
      pl.weights = kWQ;
    }
    *plan = pl;
  }
}

__global__ void __launch_bounds__(kThreads)
    lazy_kernel(VerifyArgs a, TilePartial* parts, int32_t* counters, int64_t T) {
  __shared__ Shared sh;
  const int64_t b = blockIdx.y, tile = blockIdx.x;
  if (threadIdx.x < 32) plan_lazy(a, b, &sh.plan);
  __syncthreads();
  const RowPlan pl = sh.plan;
  const float* q = row_q(a, b, pl.row);
  const float* p = row_p(a, pl, b);
  const int64_t begin = tile * kTile, end = min(begin + kTile, a.V);

  TilePartial part{0ull, 0ull};
  if (!pl.bad) {
    unsigned long long m = 0;
#pragma unroll 4
    for (int it = 0; it < kItems; ++it) {
      const int64_t i = begin + it * kThreads + threadIdx.x;
      if (i < end) m += fixed_weight(weight_at(pl, a, q, p, i));
    }
    part.mass = block_sum(m, sh.u);
  }
  if (threadIdx.x == 0) {
    parts[b * T + tile] = part;
    __threadfence();
    const int ticket = atomicAdd(&counters[b], 1);
    sh.last = ticket == static_cast<int>(T - 1);
  }
  __syncthreads();
  if (!sh.last) return;
  __threadfence();

  // Last CTA of request b: combine the T tile masses in tile order.
  const TilePartial* rp = parts + b * T;
  int64_t token = 0;
  if (!pl.bad) {
    unsigned long long m = 0;
    for (int64_t t = threadIdx.x; t < T; t += kThreads) m += __ldcg(&rp[t].mass);
    const unsigned long long total = block_sum(m, sh.u);
    if (total > 0) {
      unsigned long long target = icdf_target(final_draw(a.seeds[b], a.counters[b]), total);
      int64_t found_tile = -1;
      for (int64_t base = 0; base < T; base += kThreads) {
        const int64_t t = base + threadIdx.x;
        const unsigned long long mt = t < T ? __ldcg(&rp[t].mass) : 0ull;
        unsigned long long segtot;
        const unsigned long long excl = block_excl_scan(mt, sh.u, &segtot);
        if (target < segtot) {
          if (excl <= target && target < excl + mt) {
            sh.found = t;
            sh.rest = target - excl;
          }
          __syncthreads();
          found_tile = sh.found;
          target = sh.rest;
          __syncthreads();
          break;
        }
        target -= segtot;
      }
      const int64_t lo = found_tile * kTile, hi = min(lo + kTile, a.V);
      token = block_icdf_find(pl, a, q, p, lo, hi, target, sh);
    } else if (pl.weights != kWQ) {
      RowPlan fb = pl;
      fb.weights = kWQ;
      token = block_sample_with_fallback(fb, a, b, sh);
    }
  }
  write_outputs(a, b, pl, token);
  if (threadIdx.x == 0) counters[b] = 0;  // ready for the next call or graph replay
}

// ---------------------------------------------------------------------------------------------
// Scan strategies: greedy, tas, topk. One CTA per (row, request).

__device__ ScoreIdx block_argmax_row(const float* x, int64_t V, Shared& sh) {
  ScoreIdx best{-INFINITY, INT64_MAX};
  for (int64_t i = threadIdx.x; i < V; i += kThreads)
    if (argmax_better(x[i], i, best.s, best.i)) best = ScoreIdx{x[i], i};
  return block_best(best, sh.s, sh.i);
}

// K-th largest value of a non-negative row by 4 rounds of 8-bit radix select.
__device__ float block_kth_largest(const float* q, int64_t V, int64_t K, Shared& sh) {
  K = K < 1 ? 1 : (K > V ? V : K);
  unsigned int prefix = 0, mask = 0;
  unsigned long long kk = static_cast<unsigned long long>(K);
  for (int shift = 24; shift >= 0; shift -= 8) {
    sh.hist[threadIdx.x] = 0;  // kThreads == 256 bins
    __syncthreads();
    for (int64_t i = threadIdx.x; i < V; i += kThreads) {
      const float v = q[i];
      const unsigned int key = v > 0.0f ? __float_as_uint(v) : 0u;
      if ((key & mask) == prefix) atomicAdd(&sh.hist[(key >> shift) & 255u], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      unsigned long long cum = 0;
      int d = 255;
      for (; d > 0; --d) {
        if (cum + sh.hist[d] >= kk) break;
        cum += sh.hist[d];
      }
      kk -= cum;
      sh.rest = kk;
      sh.found = d;
    }
    __syncthreads();
    prefix |= static_cast<unsigned int>(sh.found) << shift;
    mask |= 255u << shift;
    kk = sh.rest;
    __syncthreads();
  }
  return __uint_as_float(prefix);
}

__global__ void __launch_bounds__(kThreads)
    scan_kernel(VerifyArgs a, RowResult* results, int32_t* counters) {
  __shared__ Shared sh;
  const int64_t j = blockIdx.x, b = blockIdx.y;
  const int64_t k = a.k, V = a.V;
  int64_t n = a.num_drafts ? a.num_drafts[b] : k;
  n = n < 0 ? 0 : (n > k ? k : n);
  const int64_t* x = a.draft_tokens + b * k;
  const float* q = row_q(a, b, j);
  RowResult res{0, 0, 0};
  const bool drafted = j < n;
  const int64_t xj = drafted ? x[j] : -1;
  const bool work = j <= n && (!drafted || (xj >= 0 && xj < V));
  if (work) {
    res.valid = 1;
    if (a.strategy == kGreedy) {
      const float* src = a.target_logits ? a.target_logits + (b * (k + 1) + j) * V : q;
      const ScoreIdx g = block_argmax_row(src, V, sh);
      res.accept = drafted && g.i == xj;
      res.token = g.i;
    } else if (a.strategy == kTas) {
      if (drafted || a.tas_bonus_argmax) {
        unsigned long long h = 0;
        ScoreIdx best{-INFINITY, INT64_MAX};
        for (int64_t i = threadIdx.x; i < V; i += kThreads) {
          const float v = q[i];
          if (drafted) h += static_cast<unsigned long long>(entropy_term_fixed(v, entropy_log(v)));
          if (argmax_better(v, i, best.s, best.i)) best = ScoreIdx{v, i};
        }
        best = block_best(best, sh.s, sh.i);
        res.token = best.i;
        if (drafted) {
          const int64_t hf = static_cast<int64_t>(block_sum(h, sh.u));
          const float tau = tas_threshold(entropy_from_fixed(hf), a.tas_eps, a.tas_alpha);
          res.accept = q[xj] > tau;
        }
      } else {
        RowPlan pl{};
        pl.row = j;
        pl.draft = -1;
        pl.weights = kWQ;
        res.token = block_sample_with_fallback(pl, a, b, sh);
      }
    } else {  // kTopk
      RowPlan pl{};
      pl.row = j;
      pl.draft = -1;
      pl.weights = kWQ;
      bool accept = false;
      if (drafted) {
        const float t = q[xj];
        unsigned long long c = 0;
        for (int64_t i = threadIdx.x; i < V; i += kThreads) c += q[i] > t ? 1ull : 0ull;
        c = block_sum(c, sh.u);
        const unsigned long long K = static_cast<unsigned long long>(a.topk_k);
        accept = t > 0.0f && c < K;
        if (!accept) {
          pl.topk_theta = block_kth_largest(q, V, a.topk_k, sh);
          pl.draft = xj;
          pl.weights = kWTopk;
        }
      }
      res.accept = accept;
      if (!accept) res.token = block_sample_with_fallback(pl, a, b, sh);
    }
  }
  if (threadIdx.x == 0) {
    results[b * (k + 1) + j] = res;
    __threadfence();
    const int ticket = atomicAdd(&counters[b], 1);
    sh.last = ticket == static_cast<int>(k);
  }
  __syncthreads();
  if (!sh.last) return;
  __threadfence();

  RowPlan pl{};
  pl.n = block_validate(a, b, sh, &pl.bad);
  const RowResult* rr = results + b * (k + 1);
  if (threadIdx.x == 0) {
    int64_t pos = pl.n;
    for (int64_t i = 0; i < pl.n; ++i) {
      if (!__ldcg(&rr[i].accept)) {
        pos = i;
        break;
      }
    }
    sh.found = pos;
    sh.rest = static_cast<unsigned long long>(__ldcg(&rr[pos].token));
  }
  __syncthreads();
  pl.pos = sh.found;
  write_outputs(a, b, pl, static_cast<int64_t>(sh.rest));
  if (threadIdx.x == 0) counters[b] = 0;
}

// ---------------------------------------------------------------------------------------------
// Value checks (validate): one CTA per row of `target`, `draft` and greedy's `target_logits`.

__global__ void __launch_bounds__(kThreads) check_kernel(VerifyArgs a, int32_t* flags) {
  __shared__ Shared sh;
  const int64_t b = blockIdx.y, k = a.k, V = a.V;
  int64_t r = blockIdx.x;
  int64_t n = a.num_drafts ? a.num_drafts[b] : k;
  n = n < 0 ? 0 : (n > k ? k : n);  // out of range: flagged on the row by the main kernel
  const float* row;
  bool live, logits = false;
  if (r <= k) {
    row = row_q(a, b, r);
    live = r <= n;
  } else if (a.draft && r <= 2 * k) {
    r -= k + 1;
    row = a.draft + (b * k + r) * V;
    live = r < n;
  } else {
    r -= a.draft ? 2 * k + 1 : k + 1;
    row = a.target_logits + (b * (k + 1) + r) * V;
    live = false;
    logits = true;
  }
  double total = 0.0;
  unsigned long long bad = 0;
  for (int64_t i = threadIdx.x; i < V; i += kThreads) {
    const float v = row[i];
    total += v;
    bad += logits ? (v != v) : !(v >= 0.0f);
  }
  total = block_sum(total, sh.d);
  bad = block_sum(bad, sh.u);
  const double off = total - 1.0;
  if (threadIdx.x == 0 && (bad || (live && !(off <= kSumTol && off >= -kSumTol)))) flags[0] = 1;
}

inline bool is_lazy(int32_t s) { return s == kSps || s == kCactus || s == kInterp; }

inline int64_t check_rows(const VerifyArgs& a) {
  return (a.k + 1) + (a.draft ? a.k : 0) + (a.target_logits ? a.k + 1 : 0);
}

}  // namespace
}  // namespace specbench

extern "C" int64_t specbench_verify_cuda_workspace_bytes(int64_t B, int64_t k, int64_t V) {
  using namespace specbench;
  const int64_t T = (V + kTile - 1) / kTile;
  const int64_t per = T > k + 1 ? T : k + 1;
  const int64_t n = B * per;
  return 16 * (n > 0 ? n : 1);
}

#if !defined(SPECBENCH_CUDA_EMULATION)
extern "C" int32_t specbench_verify_cuda(const specbench::VerifyArgs* args, void* workspace,
                                         int32_t* counters, int32_t* flags, void* stream) {
  using namespace specbench;
  const VerifyArgs& a = *args;
  if (a.B < 0 || a.k < 0 || a.V < 1 || a.B > 65535 || !workspace || !counters || !flags)
    return kBadArgs;
  if (a.strategy < kGreedy || a.strategy > kInterp || a.target_is_logits) return kBadArgs;
  if (a.B == 0) return kOk;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (a.validate) {
    const dim3 grid(static_cast<unsigned>(check_rows(a)), static_cast<unsigned>(a.B));
    check_kernel<<<grid, kThreads, 0, s>>>(a, flags);
  }
  if (is_lazy(a.strategy)) {
    const int64_t T = (a.V + kTile - 1) / kTile;
    const dim3 grid(static_cast<unsigned>(T), static_cast<unsigned>(a.B));
    lazy_kernel<<<grid, kThreads, 0, s>>>(a, static_cast<TilePartial*>(workspace), counters, T);
  } else {
    if (a.k + 1 > 2147483647) return kBadArgs;
    const dim3 grid(static_cast<unsigned>(a.k + 1), static_cast<unsigned>(a.B));
    scan_kernel<<<grid, kThreads, 0, s>>>(a, static_cast<RowResult*>(workspace), counters);
  }
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? kOk : kCudaError + static_cast<int32_t>(err);
}
#endif  // !SPECBENCH_CUDA_EMULATION
