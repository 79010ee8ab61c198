// Test-only CPU emulation of the CUDA execution model, just enough to run the kernels of
// kernels/verify_cuda.cu without a GPU: every thread of a CTA is an OS thread, __syncthreads is a
// block barrier, warp shuffles and ballots go through a per-warp exchange with barriers, and the
// CTAs of a grid run one after another in a shuffled order (so the "last CTA" combine sees every
// completion order). It checks the kernels' logic (indexing, reductions, scans, the cross-CTA
// combine, counters left at zero), not timing, memory-model or hardware behaviour.
// Built by tests/test_kernels.py with g++ -std=c++20 -pthread; called through ctypes.
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <thread>
#include <type_traits>
#include <vector>

#define SPECBENCH_CUDA_EMULATION 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __shared__ static  // one CTA runs at a time, so a static is exactly per-CTA storage

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

thread_local dim3 threadIdx;
dim3 blockIdx, gridDim;

namespace emu {
struct Warp {
  std::barrier<> bar{32};
  uint64_t slot[32];
};
std::barrier<>* block_bar = nullptr;
Warp* warps = nullptr;

template <class T>
T exchange(T v, int src_lane) {
  const int lane = threadIdx.x & 31;
  Warp& w = warps[threadIdx.x >> 5];
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  w.slot[lane] = bits;
  w.bar.arrive_and_wait();
  const uint64_t r = (src_lane >= 0 && src_lane < 32) ? w.slot[src_lane] : bits;
  w.bar.arrive_and_wait();
  T out;
  std::memcpy(&out, &r, sizeof(T));
  return out;
}
}  // namespace emu

inline void __syncthreads() { emu::block_bar->arrive_and_wait(); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
template <class T>
T __shfl_down_sync(unsigned, T v, int o) {
  return emu::exchange(v, static_cast<int>(threadIdx.x & 31) + o);
}
template <class T>
T __shfl_up_sync(unsigned, T v, int o) {
  return emu::exchange(v, static_cast<int>(threadIdx.x & 31) - o);
}
inline unsigned __ballot_sync(unsigned, bool pred) {
  const int lane = threadIdx.x & 31;
  emu::Warp& w = emu::warps[threadIdx.x >> 5];
  w.slot[lane] = pred ? 1 : 0;
  w.bar.arrive_and_wait();
  unsigned m = 0;
  for (int i = 0; i < 32; ++i) m |= static_cast<unsigned>(w.slot[i] & 1u) << i;
  w.bar.arrive_and_wait();
  return m;
}
inline int __ffs(unsigned x) { return __builtin_ffs(static_cast<int>(x)); }
template <class T>
T atomicAdd(T* p, T v) {
  return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
template <class T>
T __ldcg(const T* p) {
  return *static_cast<const volatile T*>(p);
}
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
template <class A, class B>
std::common_type_t<A, B> min(A a, B b) {
  using T = std::common_type_t<A, B>;
  return static_cast<T>(a) < static_cast<T>(b) ? static_cast<T>(a) : static_cast<T>(b);
}

#include "../kernels/verify_cuda.cu"

namespace {

template <class F>
void launch(dim3 grid, unsigned threads, std::mt19937* rng, F body) {
  std::vector<std::pair<unsigned, unsigned>> ctas;
  for (unsigned y = 0; y < grid.y; ++y)
    for (unsigned x = 0; x < grid.x; ++x) ctas.emplace_back(x, y);
  std::shuffle(ctas.begin(), ctas.end(), *rng);
  gridDim = grid;
  for (auto [x, y] : ctas) {
    blockIdx = dim3(x, y);
    std::barrier<> bar(threads);
    std::vector<emu::Warp> warps(threads / 32);
    emu::block_bar = &bar;
    emu::warps = warps.data();
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([t, &body] {
        threadIdx = dim3(t);
        body();
      });
    for (auto& th : pool) th.join();
  }
}

}  // namespace

// Same contract as specbench_verify_cuda, on host memory. Returns 0, a Status, or 99 when a
// ticket was not left at zero; *flags receives the value checks' flag (validate).
extern "C" int32_t specbench_verify_cuda_emulated(const specbench::VerifyArgs* args,
                                                  uint32_t seed, int32_t* flags) {
  using namespace specbench;
  const VerifyArgs a = *args;
  if (a.B < 0 || a.k < 0 || a.V < 1 || a.target_is_logits) return kBadArgs;
  if (a.B == 0) return kOk;
  std::vector<unsigned char> ws(
      static_cast<size_t>(specbench_verify_cuda_workspace_bytes(a.B, a.k, a.V)), 0xAB);
  std::vector<int32_t> tickets(static_cast<size_t>(a.B), 0);
  std::mt19937 rng(seed);
  *flags = 0;
  if (a.validate) {
    launch(dim3(static_cast<unsigned>(check_rows(a)), static_cast<unsigned>(a.B)), kThreads, &rng,
           [&] { check_kernel(a, flags); });
  }
  if (is_lazy(a.strategy)) {
    const int64_t T = (a.V + kTile - 1) / kTile;
    auto* parts = reinterpret_cast<TilePartial*>(ws.data());
    launch(dim3(static_cast<unsigned>(T), static_cast<unsigned>(a.B)), kThreads, &rng,
           [&] { lazy_kernel(a, parts, tickets.data(), T); });
  } else {
    auto* results = reinterpret_cast<RowResult*>(ws.data());
    launch(dim3(static_cast<unsigned>(a.k + 1), static_cast<unsigned>(a.B)), kThreads, &rng,
           [&] { scan_kernel(a, results, tickets.data()); });
  }
  for (int32_t c : tickets)
    if (c != 0) return 99;
  return kOk;
}
