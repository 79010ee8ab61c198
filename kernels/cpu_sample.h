// specbench CPU twin: the per-request state of a verification and the sampling of its final
// token over one row (weights per rule, chunk masses, the fixed-point inverse-CDF search).
// Header-only, included by verify_cpu.cpp alone; torch-free.
#pragma once

#include "cpu_rows.h"
#include "verify.h"

#include <algorithm>
#include <vector>

namespace specbench {
namespace cpu {

enum WeightKind : int32_t { kWQ = 0, kWSps, kWCactus, kWTopk };

struct RowState {
  int64_t n = 0;        // real drafts of this request
  int64_t pos = 0;      // first rejected position, or n
  int64_t row = 0;      // row of q (and p) that gives the final token
  int64_t token = -1;   // final token when already decided (greedy, tas argmax)
  int64_t draft = -1;   // draft token at `row` for residual weights
  int32_t weights = kWQ;
  bool sample = false;  // the final token is sampled from `weights` at `row`
  bool tas_open = false;  // TAS: the row walk has not decided this request yet
  float draft_p = 1.0f;   // p at `draft` in `row` (1 for one-hot drafts)
  float cactus_h = 0.0f, cactus_scale = 0.0f, topk_theta = 0.0f;
  const float* q_probs = nullptr;  // logits mode: `row`'s probabilities (else read the tensor)
  const float* p_probs = nullptr;  // logits mode with draft logits: the draft row's
};

struct TasPart {  // one vocabulary chunk of one TAS row
  int64_t entropy;  // fixed-point part of the entropy sum
  int64_t amax;     // lowest index of the chunk's maximum
  float vmax;       // that maximum
};

// The final row's target and draft probabilities over one block. `p` null: one-hot draft (or q
// alone).
struct BlockVals {
  const float* q;
  const float* p;
};

inline BlockVals final_block(const RowState& st, const VerifyArgs& a, int64_t b, int64_t begin) {
  const int64_t V = a.V;
  const float* q = st.q_probs ? st.q_probs : a.target + (b * (a.k + 1) + st.row) * V;
  const float* p = nullptr;
  if (st.weights != kWQ && a.draft)
    p = st.p_probs ? st.p_probs : a.draft + (b * a.k + st.row) * V;
  return BlockVals{q + begin, p ? p + begin : nullptr};
}

// Weights of the final row for elements [begin, begin + len), len <= kBlk, from its values.
inline void weights_block(const RowState& st, BlockVals v, int64_t begin, int len, float* w) {
  const float* qb = v.q;
  const float* pb = v.p;
  switch (st.weights) {
    case kWQ:
      for (int i = 0; i < len; ++i) w[i] = qb[i];
      return;
    case kWSps:
      if (pb) {
        for (int i = 0; i < len; ++i) w[i] = relu_sub(qb[i], pb[i]);
      } else {
        for (int i = 0; i < len; ++i) w[i] = relu_sub(qb[i], begin + i == st.draft ? 1.0f : 0.0f);
      }
      return;
    case kWCactus: {
      const float sc = st.cactus_scale;
      if (pb) {
        for (int i = 0; i < len; ++i) w[i] = cactus_weight(sc, qb[i], pb[i]);
      } else {
        for (int i = 0; i < len; ++i)
          w[i] = cactus_weight(sc, qb[i], begin + i == st.draft ? 1.0f : 0.0f);
      }
      const int64_t d = st.draft - begin;  // the drafted token itself carries h_n
      if (d >= 0 && d < len) w[d] = relu_sub(st.cactus_h, st.draft_p);
      return;
    }
    case kWTopk: {
      const float th = st.topk_theta;
      if (pb) {
        for (int i = 0; i < len; ++i)
          w[i] = relu_sub(qb[i] > 0.0f && qb[i] >= th ? 1.0f : 0.0f, pb[i]);
      } else {
        for (int i = 0; i < len; ++i)
          w[i] = relu_sub(qb[i] > 0.0f && qb[i] >= th ? 1.0f : 0.0f,
                          begin + i == st.draft ? 1.0f : 0.0f);
      }
      return;
    }
  }
}

inline void final_weights(const RowState& st, const VerifyArgs& a, int64_t b, int64_t begin,
                          int len, float* w) {
  weights_block(st, final_block(st, a, b, begin), begin, len, w);
}

// Exact fixed-point mass of the final row's weights over [begin, end).
SB_CLONES uint64_t chunk_mass(const RowState& st, const VerifyArgs& a, int64_t b, int64_t begin,
                              int64_t end) {
  alignas(16) float w[kBlk];
  uint64_t mass = 0;
  for (int64_t s = begin; s < end; s += kBlk) {
    const int len = static_cast<int>(std::min<int64_t>(kBlk, end - s));
    final_weights(st, a, b, s, len, w);
    mass += static_cast<uint64_t>(block_fixed_mass(w, len));
  }
  return mass;
}

// First index in [begin, end) whose inclusive fixed-point prefix exceeds t (t < chunk mass).
SB_CLONES int64_t icdf_find(const RowState& st, const VerifyArgs& a, int64_t b, int64_t begin,
                            int64_t end, uint64_t t) {
  alignas(16) float w[kBlk];
  uint64_t acc = 0;
  for (int64_t s = begin; s < end; s += kBlk) {
    const int len = static_cast<int>(std::min<int64_t>(kBlk, end - s));
    final_weights(st, a, b, s, len, w);
    const uint64_t m = static_cast<uint64_t>(block_fixed_mass(w, len));
    if (acc + m <= t) {  // the crossing is in a later block
      acc += m;
      continue;
    }
    for (int i = 0; i < len; ++i) {
      acc += fixed_weight(w[i]);
      if (acc > t) return s + i;
    }
  }
  return end - 1;  // unreachable when t < mass
}

// Sample the final token of one row serially (the rare fallback to q); *any: mass > 0.
int64_t sample_row_serial(const RowState& st, const VerifyArgs& a, int64_t b, bool* any) {
  const uint64_t total = chunk_mass(st, a, b, 0, a.V);
  *any = total > 0;
  if (total == 0) return 0;
  return icdf_find(st, a, b, 0, a.V, icdf_target(final_draw(a.seeds[b], a.counters[b]), total));
}

}  // namespace cpu
}  // namespace specbench
