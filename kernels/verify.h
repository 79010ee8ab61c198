// specbench verification kernels: the shared contract of the CPU twin and the CUDA kernels.
//
// This header holds everything both backends must compute identically: the argument block,
// the per-strategy acceptance tests, the residual weights, the fixed-point inverse-CDF
// arithmetic and the softmax of the logits mode. It includes neither CUDA nor torch headers, so
// g++ and nvcc compile the very same policy code (__host__ __device__ under nvcc). Semantics
// follow docs/strategies.md; the noise is a pure function of each row's (seed, counter)
// (philox.h, docs/randomness.md).
//
// Exactness rules (docs/kernels.md): every float operation below is a single IEEE
// operation (add, sub, mul, correctly rounded div and sqrt); translation units are compiled
// with -ffp-contract=off (g++) and --fmad=false (nvcc) so no fused multiply-add changes a
// result; argmax ties go to the lowest index; inverse-CDF sampling uses exact 64-bit
// fixed-point prefix sums, so the summation order (tiling, threads, device) cannot flip a sample.
#pragma once

#include <stdint.h>

#include "philox.h"

#if defined(__CUDACC__)
#define SB_HD __host__ __device__ __forceinline__
#else
#define SB_HD inline
#endif

// Single correctly rounded fp32 operations that no compiler flag may fuse or approximate
// (device intrinsics; on the host -ffp-contract=off keeps plain operators exact).
#if defined(__CUDA_ARCH__)
#define SB_ADD(a, b) __fadd_rn((a), (b))
#define SB_SUB(a, b) __fsub_rn((a), (b))
#define SB_MUL(a, b) __fmul_rn((a), (b))
#define SB_DIV(a, b) __fdiv_rn((a), (b))
#define SB_SQRT(a) __fsqrt_rn(a)
#else
#define SB_ADD(a, b) ((a) + (b))
#define SB_SUB(a, b) ((a) - (b))
#define SB_MUL(a, b) ((a) * (b))
#define SB_DIV(a, b) ((a) / (b))
#define SB_SQRT(a) __builtin_sqrtf(a)
#endif

namespace specbench {

enum Strategy : int32_t { kGreedy = 0, kSps = 1, kTas = 2, kCactus = 3, kTopk = 4, kInterp = 5 };

// Status codes returned by the launchers (0 = ok).
enum Status : int32_t {
  kOk = 0,
  kBadArgs = 1,          // shapes, null pointers or parameters out of range
  kBadDraftToken = 2,    // a draft id outside [0, V) (CPU twin only; CUDA flags the row)
  kBadNumDrafts = 3,     // num_drafts outside [0, k] (CPU twin only; CUDA flags the row)
  kBadValues = 4,        // a value check failed (validate only; the outputs are still written)
  kCudaError = 100,      // + cudaError_t
};

// One verification call. Every tensor is dense, row-major, float32 / int64 as noted.
struct VerifyArgs {
  int64_t B, k, V;
  int32_t strategy;            // Strategy
  int32_t validate;            // check values in the first pass over the rows (kBadValues)
  float cactus_delta;          // cactus: delta
  float tas_eps, tas_alpha;    // tas: epsilon, alpha
  float interp_lambda;         // interp: fp32(alpha)
  float interp_rest;           // interp: fp32(1 - alpha), rounded once from the double (as torch)
  int32_t tas_bonus_argmax;    // tas: bonus = argmax instead of a sample (then no noise at all)
  int64_t topk_k;              // topk: K
  // Logits mode: `target` (and `draft` when draft_is_logits) hold raw logits, processed as
  // specbench_cli/sampling.py does (temperature 0: one-hot at the argmax; top-k; softmax).
  int32_t target_is_logits, draft_is_logits;
  float temperature;           // logits mode: 0 = greedy
  int64_t top_k;               // logits mode: 0 = off
  const float* target;         // [B, k+1, V] probabilities, or raw logits (logits mode)
  const float* draft;          // [B, k, V] probabilities (or raw logits), or null: one-hot drafts
  const int64_t* draft_tokens; // [B, k]
  const int64_t* seeds;        // [B] Philox key of each row (philox.h)
  const int64_t* counters;     // [B] step counter of each row
  const int64_t* num_drafts;   // [B] per-row real draft count, or null (= k)
  const float* target_logits;  // probability mode: [B, k+1, V] greedy argmax source, or null
  int64_t* tokens;             // out [B, k+1]: accepted drafts, one emitted token, -1 padding
  int64_t* num_accepted;       // out [B]
};

constexpr double kSumTol = 1e-3;  // probability rows must sum to 1 within this

// Whether a rule reads noise (seeds and counters): all but greedy and TAS with an argmax bonus.
SB_HD bool uses_noise(int64_t strategy, bool tas_bonus_argmax) {
  return strategy != kGreedy && !(strategy == kTas && tas_bonus_argmax);
}

// The rule's fields of the argument block, from the bindings' arguments (host side).
inline void set_policy(VerifyArgs* a, int64_t strategy, double delta, double tas_eps,
                       double tas_alpha, double interp_lambda, int64_t topk_k,
                       bool tas_bonus_argmax) {
  a->strategy = static_cast<int32_t>(strategy);
  a->cactus_delta = static_cast<float>(delta);
  a->tas_eps = static_cast<float>(tas_eps);
  a->tas_alpha = static_cast<float>(tas_alpha);
  a->interp_lambda = static_cast<float>(interp_lambda);
  a->interp_rest = static_cast<float>(1.0 - interp_lambda);  // rounded once, as torch does
  a->topk_k = topk_k;
  a->tas_bonus_argmax = tas_bonus_argmax ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Acceptance (docs/randomness.md): accept <=> u * s < t, strict, with the product rounded
// to fp32 exactly as the torch reference evaluates `u_acc * p_x < t` (never fused). t = 0 never
// accepts; s = 0 accepts iff t > 0. (The exact real comparison would form u * s in fp64; the two
// differ only when u * s lies within half an fp32 ulp of t.)
SB_HD bool accept_mul(float u, float s, float t) { return SB_MUL(u, s) < t; }

// Cactus (docs/strategies.md), per drafted token n with target value qn:
//   h_n = clamp(q_n + sqrt(2 delta q_n (1 - q_n)), 0, 1)
//   s_n = (1 - h_n) / (1 - q_n)  if 1 - q_n > 1e-10, else 0
// Evaluated in fp32, one rounded operation at a time, left to right.
struct CactusRow {
  float h;      // boosted target value of the drafted token
  float scale;  // s_n, applied to every other token
};

SB_HD CactusRow cactus_row(float qn, float delta) {
  const float two_delta = SB_MUL(2.0f, delta);
  const float one_minus_q = SB_SUB(1.0f, qn);
  float a = SB_MUL(SB_MUL(two_delta, qn), one_minus_q);
  a = a < 0.0f ? 0.0f : a;  // q_n rounded slightly above 1 (torch: clamp_min(0) before sqrt)
  float h = SB_ADD(qn, SB_SQRT(a));
  h = h < 0.0f ? 0.0f : (h > 1.0f ? 1.0f : h);
  CactusRow r;
  r.h = h;
  r.scale = one_minus_q > 1e-10f ? SB_DIV(SB_SUB(1.0f, h), one_minus_q) : 0.0f;
  return r;
}

// Cactus residual weight of a token other than the drafted one: max(s_n * q - p, 0), a
// multiply then a subtract (never a fused multiply-add).
SB_HD float cactus_weight(float scale, float q, float p) {
  const float d = SB_SUB(SB_MUL(scale, q), p);
  return d > 0.0f ? d : 0.0f;
}

// Interpolation (docs/strategies.md): m = lambda * p + (1 - lambda) * q, in fp32, with
// rest = fp32(1 - lambda) rounded once from double (torch evaluates `(1.0 - alpha) * q`).
// The residual at a rejection is the SpS residual max(q - p, 0) (same law, same as torch).
SB_HD float interp_mix(float q, float p, float lambda, float rest) {
  return SB_ADD(SB_MUL(lambda, p), SB_MUL(rest, q));
}

SB_HD float relu_sub(float a, float b) {
  const float d = SB_SUB(a, b);
  return d > 0.0f ? d : 0.0f;
}

// Horner's rule, one rounded operation at a time: ((c0 x + c1) x + c2) x + ... (adding a
// negative coefficient is the same IEEE operation as subtracting its magnitude).
template <int N>
SB_HD float horner(float x, const float (&c)[N]) {
  float y = c[0];
#pragma unroll
  for (int i = 1; i < N; ++i) y = SB_ADD(SB_MUL(y, x), c[i]);
  return y;
}

// (value, index) pairs ordered by value descending, then index ascending: every argmax.
SB_HD bool argmax_better(float s1, int64_t i1, float s2, int64_t i2) {
  return s1 > s2 || (s1 == s2 && i1 < i2);
}

// ---------------------------------------------------------------------------------------------
// Inverse-CDF sampling on exact fixed-point weights (docs/randomness.md):
//   W_x = floor(w_x * 2^44) as an integer (exact: a power-of-two scale, then truncation);
//   T = sum W_x (exact, any order); t = floor(r * T / 2^64) < T for the row's 64-bit draw r;
//   token = smallest y with sum_{x <= y} W_x > t.
// With w <= 1 and V <= 2^18, T < 2^62. Weights below 2^-44 per token are dropped (documented).
constexpr int kFixedShift = 44;

SB_HD uint64_t fixed_weight(float w) {
  // w * 2^44 is exact in fp32; the conversion truncates toward zero (= floor for w >= 0).
  // via int64: the value is < 2^63, and signed conversion is one instruction on x86-64.
  return w > 0.0f ? static_cast<uint64_t>(static_cast<int64_t>(SB_MUL(w, 17592186044416.0f)))
                  : 0ull;
}

SB_HD uint64_t icdf_target(uint64_t r, uint64_t total) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(r, total);
#else
  return static_cast<uint64_t>((static_cast<unsigned __int128>(r) * total) >> 64);
#endif
}

// ---------------------------------------------------------------------------------------------
// Logits mode: one row's softmax, defined op by op so that every backend gets the same bits.
//   x = l / T (T = 1: l itself); top-k keeps x >= the K-th largest x (ties kept);
//   e = exp(x - max) by sb_expf; Z = sum of floor(e * 2^44) over kept tokens (exact integer);
//   q = e / fp32(Z * 2^-44), one rounded division. Temperature 0: q is one-hot at the lowest
//   index of the largest raw logit. (torch's softmax differs in the last bits, so tokens agree
//   with the reference path except for decisions within rounding.)
SB_HD float processed_logit(float l, float temperature) {
  return temperature == 1.0f || temperature == 0.0f ? l : SB_DIV(l, temperature);
}

// exp(x) for x <= 0 (0 below -87, where the result would leave the normal range): Cephes expf,
// plain IEEE operations, about 1 ulp. Shared so that CPU and GPU agree bit for bit. The
// argument is clamped to [-87, 0] first, so the exponent arithmetic is defined for any input.
SB_HD float sb_expf(float x) {
  const float xc = x >= -87.0f ? (x <= 0.0f ? x : 0.0f) : -87.0f;
  const float fn = SB_ADD(SB_MUL(xc, 1.44269504088896341f), 0.5f);
#if defined(__CUDA_ARCH__)
  const float n = floorf(fn);
#else
  const float n = __builtin_floorf(fn);
#endif
  float r = SB_SUB(xc, SB_MUL(n, 0.693359375f));
  r = SB_SUB(r, SB_MUL(n, -2.12194440e-4f));
  const float z = SB_MUL(r, r);
  const float c[] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f,
                     1.6666665459e-1f, 5.0000001201e-1f};
  const float y = SB_ADD(SB_ADD(SB_MUL(horner(r, c), z), r), 1.0f);
  union { int32_t i; float f; } scale;
  scale.i = (static_cast<int32_t>(n) + 127) * 8388608;  // 2^n, n in [-126, 0]
  const float out = SB_MUL(y, scale.f);
  return x >= -87.0f ? out : 0.0f;
}

struct LogitRow {
  float max;       // largest processed logit
  float zf;        // fp32(Z * 2^-44), the normalizer
  float kth;       // top-k threshold on processed logits (-inf: off)
  int64_t argmax;  // lowest index of the largest processed logit
};

SB_HD float z_to_float(uint64_t z) {  // Z >= 2^44 (the maximum contributes exactly 2^44)
  return SB_MUL(static_cast<float>(static_cast<int64_t>(z)), 5.684341886080801487e-14f);
}

// Probability of token i with processed logit x in a row normalized by `r`.
SB_HD float logit_prob(float x, int64_t i, const LogitRow& r, bool greedy) {
  if (greedy) return i == r.argmax ? 1.0f : 0.0f;
  return x >= r.kth ? SB_DIV(sb_expf(SB_SUB(x, r.max)), r.zf) : 0.0f;
}

// ---------------------------------------------------------------------------------------------
// Typical acceptance (docs/strategies.md): H = -sum q ln(q + 1e-5), tau = min(eps, alpha e^-H),
// accept iff q(x) > tau. The log is a shared software logf (Cephes polynomial, plain IEEE ops)
// so CPU and GPU compute bit-identical terms; each term q * log(q + 1e-5) is formed exactly in
// fp64 and accumulated as a fixed-point integer (scale 2^40), so the entropy is identical on
// every backend regardless of summation order. Agreement with the fp32 torch reference is within
// that reference's rounding: its fp32 entropy sum over V terms moves tau by up to ~1e-6
// relative, so kernel_checks tolerates decisions with |q(x) - tau| <= 1e-5 tau.
constexpr int kEntropyShift = 40;

SB_HD float sb_logf(float x) {
  // x in (0, inf), normal. Returns ~1 ulp accurate natural log.
  union { float f; uint32_t u; } v;
  v.f = x;
  int e = static_cast<int>((v.u >> 23) & 0xffu) - 126;  // x = m * 2^e with m in [0.5, 1)
  v.u = (v.u & 0x807fffffu) | 0x3f000000u;
  float m = v.f;
  if (m < 0.707106781186547524f) {
    e -= 1;
    m = SB_SUB(SB_ADD(m, m), 1.0f);
  } else {
    m = SB_SUB(m, 1.0f);
  }
  const float z = SB_MUL(m, m);
  const float c[] = {7.0376836292e-2f, -1.1514610310e-1f, 1.1676998740e-1f, -1.2420140846e-1f,
                     1.4249322787e-1f, -1.6668057665e-1f, 2.0000714765e-1f, -2.4999993993e-1f,
                     3.3333331174e-1f};
  float y = SB_MUL(SB_MUL(horner(m, c), m), z);
  const float fe = static_cast<float>(e);
  y = SB_ADD(y, SB_MUL(-2.12194440e-4f, fe));
  y = SB_ADD(y, SB_MUL(-0.5f, z));
  const float r = SB_ADD(m, y);
  return SB_ADD(r, SB_MUL(0.693359375f, fe));
}

// Fixed-point value of the entropy term -q * ln(q + 1e-5), given lg = sb_logf(q + 1e-5f).
// The product of two fp32 values is exact in fp64 and the 2^40 scale is exact; the conversion
// truncates toward zero. Terms are >= 0 except for q > 1 - 1e-5 (a tiny negative value).
SB_HD int64_t entropy_term_fixed(float q, float lg) {
  if (!(q > 0.0f)) return 0;
  const double t = -static_cast<double>(q) * static_cast<double>(lg);
  return static_cast<int64_t>(t * 1099511627776.0);
}

SB_HD float entropy_log(float q) { return sb_logf(SB_ADD(q, 1e-5f)); }

SB_HD double entropy_from_fixed(int64_t h) {
  return static_cast<double>(h) * (1.0 / 1099511627776.0);
}

// Threshold tau = min(eps, fp32(exp(-H)) * alpha) in fp32, the reference's evaluation order
// (`clamp(exp(-H) * alpha, max=eps)`); accept iff q(x) > tau. exp is each backend's fp64 exp
// (< 1 ulp apart), rounded to fp32.
SB_HD float tas_threshold(double entropy, float eps, float alpha) {
#if defined(__CUDA_ARCH__)
  const float e = static_cast<float>(::exp(-entropy));
#else
  const float e = static_cast<float>(__builtin_exp(-entropy));
#endif
  const float t = SB_MUL(e, alpha);
  return t > eps ? eps : t;
}

}  // namespace specbench

// ---------------------------------------------------------------------------------------------
// Launchers. Both return a Status (0 = ok).
extern "C" {
// CPU twin (verify_cpu.cpp): OpenMP over rows and vocabulary chunks; both modes.
int32_t specbench_verify_cpu(const specbench::VerifyArgs* args);

// CUDA (verify_cuda.cu, built separately by nvcc), probability mode only. `workspace` must hold
// specbench_verify_cuda_workspace_bytes(B, k, V) bytes; `counters` is an int32 [B] device array
// that is all zero before the first call and is left all zero by every call (CUDA-graph safe);
// `flags` is an int32 [1] device word the value checks set to 1 (validate; the caller reads and
// clears it). `stream` is a cudaStream_t (0 = legacy default stream).
int64_t specbench_verify_cuda_workspace_bytes(int64_t B, int64_t k, int64_t V);
int32_t specbench_verify_cuda(const specbench::VerifyArgs* args, void* workspace,
                              int32_t* counters, int32_t* flags, void* stream);
}
