// specbench CPU twin: the per-request state of a verification and the sampling of its final
// token over one row (weights per rule, chunk partials, the icdf search). Header-only, included
// by verify_cpu.cpp alone; torch-free.
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
  float cactus_h = 0.0f, cactus_scale = 0.0f, topk_theta = 0.0f;
};

struct Partial {
  float score;
  int64_t index;
  uint64_t mass;
};

struct TasPart {  // one vocabulary chunk of one TAS row
  int64_t entropy;  // fixed-point part of the entropy sum
  int64_t amax;     // lowest index of the chunk's maximum
  float vmax;       // that maximum
};

// Weights of the final row for elements [begin, begin + len), len <= kBlk.
// `p` is the draft row or null (one-hot at st.draft).
inline void weights_block(const RowState& st, const VerifyArgs& a, const float* q, const float* p,
                          int64_t begin, int len, float* w) {
  const float* qb = q + begin;
  switch (st.weights) {
    case kWQ:
      for (int i = 0; i < len; ++i) w[i] = qb[i];
      return;
    case kWSps:
      if (p) {
        const float* pb = p + begin;
        for (int i = 0; i < len; ++i) w[i] = relu_sub(qb[i], pb[i]);
      } else {
        for (int i = 0; i < len; ++i) w[i] = relu_sub(qb[i], begin + i == st.draft ? 1.0f : 0.0f);
      }
      return;
    case kWCactus: {
      const float sc = st.cactus_scale;
      if (p) {
        const float* pb = p + begin;
        for (int i = 0; i < len; ++i) w[i] = cactus_weight(sc, qb[i], pb[i]);
      } else {
        for (int i = 0; i < len; ++i)
          w[i] = cactus_weight(sc, qb[i], begin + i == st.draft ? 1.0f : 0.0f);
      }
      const int64_t d = st.draft - begin;  // the drafted token itself carries h_n
      if (d >= 0 && d < len) w[d] = relu_sub(st.cactus_h, p ? p[st.draft] : 1.0f);
      return;
    }
    case kWTopk: {
      const float th = st.topk_theta;
      if (p) {
        const float* pb = p + begin;
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

// The q row and the p row (null: one-hot draft, or q alone) that the final token is sampled from.
struct FinalRows {
  const float* q;
  const float* p;
};

inline FinalRows final_rows(const RowState& st, const VerifyArgs& a, int64_t b) {
  const int64_t V = a.V;
  const float* p = (st.weights != kWQ && a.draft_probs) ? a.draft_probs + (b * a.k + st.row) * V
                                                        : nullptr;
  return FinalRows{a.target_probs + (b * (a.k + 1) + st.row) * V, p};
}

// Partial sampling state over [begin, end) of the final row.
SB_CLONES Partial chunk_partial(const RowState& st, const VerifyArgs& a, int64_t b, int64_t begin,
                                int64_t end) {
  const int64_t V = a.V;
  const auto [q, p] = final_rows(st, a, b);
  alignas(16) float w[kBlk];
  alignas(16) float sc[kBlk];
  Partial r{-2.0f, begin, 0};
  if (a.noise_mode == kRace) {
    const float* e = a.e_fin + b * V;
    for (int64_t s = begin; s < end; s += kBlk) {
      const int len = static_cast<int>(std::min<int64_t>(kBlk, end - s));
      weights_block(st, a, q, p, s, len, w);
      for (int i = 0; i < len; ++i) sc[i] = race_score(w[i], e[s + i]);
      for (int i = len; i < kBlk; ++i) sc[i] = -2.0f;
      const float m = block_max(sc);
      if (m > r.score) {
        int i = 0;
        while (sc[i] != m) ++i;
        r.score = m;
        r.index = s + i;
      }
    }
  } else {
    uint64_t mass = 0;
    for (int64_t s = begin; s < end; s += kBlk) {
      const int len = static_cast<int>(std::min<int64_t>(kBlk, end - s));
      weights_block(st, a, q, p, s, len, w);
      const double block = block_fixed_mass(w, len);
      mass += static_cast<uint64_t>(block);
    }
    r.mass = mass;
  }
  return r;
}

// First index in [begin, end) whose inclusive fixed-point prefix exceeds t (t < chunk mass).
SB_CLONES int64_t icdf_find(const RowState& st, const VerifyArgs& a, int64_t b, int64_t begin,
                            int64_t end, uint64_t t) {
  const auto [q, p] = final_rows(st, a, b);
  alignas(16) float w[kBlk];
  uint64_t acc = 0;
  for (int64_t s = begin; s < end; s += kBlk) {
    const int len = static_cast<int>(std::min<int64_t>(kBlk, end - s));
    weights_block(st, a, q, p, s, len, w);
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

// Sample the final token of one row serially (used for the rare q fallback).
int64_t sample_row_serial(const RowState& st, const VerifyArgs& a, int64_t b, bool* any) {
  Partial best{-2.0f, 0, 0};
  uint64_t total = 0;
  for (int64_t c = 0; c < a.V; c += kChunk) {
    const Partial r = chunk_partial(st, a, b, c, std::min(a.V, c + kChunk));
    if (race_better(r.score, r.index, best.score, best.index)) {
      best.score = r.score;
      best.index = r.index;
    }
    total += r.mass;
  }
  if (a.noise_mode == kRace) {
    *any = best.score > 0.0f;
    return best.index;
  }
  *any = total > 0;
  if (total == 0) return 0;
  return icdf_find(st, a, b, 0, a.V, icdf_target(a.u_fin[b], total));
}

}  // namespace cpu
}  // namespace specbench
