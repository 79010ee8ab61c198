// Few-row matrix product for decoding steps on the CPU: y = x @ W^T (+ bias) for 1..16 rows of
// x, reading each weight once (specbench_cli/cpu_matmul.py, docs/kernels.md).
//
// A decoding step multiplies every weight matrix by 1 to k+1 activation rows. That is
// memory-bound: the weights are read once and the rows sit in L1, so any number of rows up to
// about 16 should cost what one row costs. torch's BLAS paths for these shapes do not (one row
// takes a slow matrix-vector path, 3, 5, 6, 7... rows cost up to 2x what 2 or 4 rows cost),
// which would make a benchmark charge speculation for a BLAS quirk rather than for the extra
// rows. Here every output feature o is the dot product of weight row o with each input row,
// computed for R weight rows at once (R*N accumulators in registers, each weight vector loaded
// once and used for N rows), output features split across torch's intra-op threads.
//
// The build is portable (-march=x86-64-v2); the AVX-512 and AVX2 bodies are compiled for their
// targets and picked at run time. Sums run in 16 (AVX-512) or 8 (AVX2) lanes, so results equal
// F.linear's up to float32 rounding, as any BLAS's would.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define SPECBENCH_X86 1
#endif

namespace {

constexpr int64_t kMaxRows = 16;
// Prefetch distance along a weight row, in floats (8 KiB): the best of 256-2048 measured on the
// 2-core EPYC; without it 2-9 rows ran well below the memory bandwidth.
constexpr int64_t kPrefetch = 2048;

struct Problem {
  const float* x;     // N x K, row-major
  const float* w;     // O x K, row-major
  const float* bias;  // O, or null
  float* y;           // N x O, row-major
  int64_t N, K, O;
};

// Weight rows handled together: enough accumulators to hide FMA latency, few enough to stay in
// registers (R * N + R + 1 of the 32 AVX-512 registers; the AVX2 body picks its own R).
template <int N>
constexpr int rows_at_once() {
  return N <= 2 ? 4 : (N <= 4 ? 3 : (N <= 8 ? 2 : 1));
}

inline float finish(float sum, const Problem& p, int64_t o) {
  return p.bias ? sum + p.bias[o] : sum;
}

#ifdef SPECBENCH_X86
template <int N>
__attribute__((target("avx512f"))) void body_avx512(const Problem& p, int64_t o0, int64_t o1) {
  constexpr int R = rows_at_once<N>();
  const int64_t K = p.K;
  const int64_t full = K & ~int64_t(15);
  const __mmask16 tail_mask = static_cast<__mmask16>((1u << (K - full)) - 1u);
  for (int64_t o = o0; o < o1; o += R) {
    const int r_here = static_cast<int>(o1 - o < R ? o1 - o : R);
    __m512 acc[R][N];
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < N; ++j) acc[r][j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 16) {
      const __mmask16 mask = k < full ? static_cast<__mmask16>(0xFFFF) : tail_mask;
      __m512 wv[R];
      for (int r = 0; r < R; ++r) {
        const float* row = p.w + (o + (r < r_here ? r : 0)) * K + k;
        _mm_prefetch(reinterpret_cast<const char*>(row + kPrefetch), _MM_HINT_T0);  // never faults
        wv[r] = r < r_here ? _mm512_maskz_loadu_ps(mask, row) : _mm512_setzero_ps();
      }
      for (int j = 0; j < N; ++j) {
        const __m512 xv = _mm512_maskz_loadu_ps(mask, p.x + j * K + k);
        for (int r = 0; r < R; ++r) acc[r][j] = _mm512_fmadd_ps(wv[r], xv, acc[r][j]);
      }
    }
    for (int r = 0; r < r_here; ++r)
      for (int j = 0; j < N; ++j) p.y[j * p.O + o + r] = finish(_mm512_reduce_add_ps(acc[r][j]), p, o + r);
  }
}

__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int N>
__attribute__((target("avx2,fma"))) void body_avx2(const Problem& p, int64_t o0, int64_t o1) {
  constexpr int R = N <= 4 ? 2 : 1;  // 16 registers only
  const int64_t K = p.K;
  const int64_t full = K & ~int64_t(7);
  for (int64_t o = o0; o < o1; o += R) {
    const int r_here = static_cast<int>(o1 - o < R ? o1 - o : R);
    __m256 acc[R][N];
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < N; ++j) acc[r][j] = _mm256_setzero_ps();
    for (int64_t k = 0; k < full; k += 8) {
      __m256 wv[R];
      for (int r = 0; r < R; ++r) {
        const float* row = p.w + (o + (r < r_here ? r : 0)) * K + k;
        _mm_prefetch(reinterpret_cast<const char*>(row + kPrefetch), _MM_HINT_T0);
        wv[r] = _mm256_loadu_ps(row);
      }
      for (int j = 0; j < N; ++j) {
        const __m256 xv = _mm256_loadu_ps(p.x + j * K + k);
        for (int r = 0; r < R; ++r) acc[r][j] = _mm256_fmadd_ps(wv[r], xv, acc[r][j]);
      }
    }
    for (int r = 0; r < r_here; ++r)
      for (int j = 0; j < N; ++j) {
        float sum = hsum256(acc[r][j]);
        for (int64_t k = full; k < K; ++k) sum += p.w[(o + r) * K + k] * p.x[j * K + k];
        p.y[j * p.O + o + r] = finish(sum, p, o + r);
      }
  }
}
#endif

void body_scalar(const Problem& p, int64_t o0, int64_t o1) {
  for (int64_t o = o0; o < o1; ++o)
    for (int64_t j = 0; j < p.N; ++j) {
      float sum = 0.f;
      for (int64_t k = 0; k < p.K; ++k) sum += p.w[o * p.K + k] * p.x[j * p.K + k];
      p.y[j * p.O + o] = finish(sum, p, o);
    }
}

using Body = void (*)(const Problem&, int64_t, int64_t);

bool has_avx512() {
#ifdef SPECBENCH_X86
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

bool has_avx2() {
#ifdef SPECBENCH_X86
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

enum class Isa { kAvx512, kAvx2, kScalar };

template <int N>
Body body_for(Isa isa) {
#ifdef SPECBENCH_X86
  if (isa == Isa::kAvx512) return &body_avx512<N>;
  if (isa == Isa::kAvx2) return &body_avx2<N>;
#endif
  return &body_scalar;
}

template <int... Ns>
Body pick(int64_t n, Isa isa, std::integer_sequence<int, Ns...>) {
  Body found = &body_scalar;
  ((n == Ns + 1 ? (found = body_for<Ns + 1>(isa), 0) : 0), ...);
  return found;
}

// "auto": the widest the CPU has; "avx512", "avx2", "scalar" force one (tests compare them).
Isa choose(const std::string& isa) {
  static const bool avx512 = has_avx512(), avx2 = has_avx2();
  if (isa == "auto") return avx512 ? Isa::kAvx512 : (avx2 ? Isa::kAvx2 : Isa::kScalar);
  if (isa == "avx512" && avx512) return Isa::kAvx512;
  if (isa == "avx2" && avx2) return Isa::kAvx2;
  if (isa == "scalar") return Isa::kScalar;
  throw std::invalid_argument("few_row_linear: instruction set '" + isa + "' unknown or not on this CPU");
}

}  // namespace

// x: (N, K) float32 contiguous, 1 <= N <= 16; w: (O, K) float32 contiguous; bias: (O) or
// undefined; isa: see `choose`. Returns (N, O), row-major like F.linear.
at::Tensor few_row_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias,
                          const std::string& isa) {
  auto fail = [](const char* what) { throw std::invalid_argument(std::string("few_row_linear: ") + what); };
  if (x.dim() != 2 || w.dim() != 2 || x.size(1) != w.size(1)) fail("shapes must be (N, K) and (O, K)");
  if (x.size(0) < 1 || x.size(0) > kMaxRows) fail("1 to 16 rows");
  for (const at::Tensor* t : {&x, &w})
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat || !t->is_contiguous())
      fail("inputs must be contiguous float32 CPU tensors");
  const bool has_bias = bias.defined();
  if (has_bias && (bias.dim() != 1 || bias.size(0) != w.size(0) || bias.scalar_type() != at::kFloat ||
                   !bias.is_contiguous() || !bias.device().is_cpu()))
    fail("bias must be a contiguous float32 CPU vector of O values");
  const int64_t N = x.size(0), K = x.size(1), O = w.size(0);
  at::Tensor y = at::empty({N, O}, x.options());
  const Problem p{x.data_ptr<float>(), w.data_ptr<float>(), has_bias ? bias.data_ptr<float>() : nullptr,
                  y.data_ptr<float>(), N, K, O};
  const Body body = pick(N, choose(isa), std::make_integer_sequence<int, kMaxRows>{});
  // about 64 KiB of weights per chunk: small layers stay on one thread, where waking the
  // others would cost more than it saves
  const int64_t grain = K > 0 ? (16384 + K - 1) / K : O;
  at::parallel_for(0, O, grain, [&](int64_t o0, int64_t o1) { body(p, o0, o1); });
  return y;
}
