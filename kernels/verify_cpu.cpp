// specbench verification, C++ CPU twin of verify_cuda.cu (torch-free).
//
// Three phases inside one OpenMP parallel region (torch's own libgomp is reused: same soname):
//   1. per request: acceptance chain. Lazy strategies (sps, cactus, interp) gather 2 values per
//      position; greedy and topk scan rows 0..a until the first rejection. TAS, whose entropy
//      costs a log per token, walks its rows in step across all threads: each row's
//      (request, vocabulary chunk) parts in parallel, then every open request decides.
//   2. per (request, vocabulary chunk): partial sampling state of the final row's weights
//      (race: best score and its lowest index; icdf: exact fixed-point mass).
//   3. per request: combine chunk partials in chunk order, re-scan one chunk for icdf, fall back
//      to q when the residual is empty, write the outputs.
// Every decision uses the shared policy code in verify.h, so results do not depend on the chunk
// size or the thread count. Compile with -ffp-contract=off (exactness) and -fno-trapping-math
// (lets g++ vectorise the guarded divisions; it changes no result).
#include "verify.h"

#include "cpu_rows.h"
#include "cpu_sample.h"

#include <algorithm>
#include <vector>

namespace specbench {
namespace {

using namespace cpu;  // NOLINT: row scans and sampling are this file's vocabulary

// TAS accepted all n drafts: the bonus row's token is its argmax or a sample of q.
void tas_bonus(const VerifyArgs& a, int64_t b, RowState* st) {
  st->tas_open = false;
  st->row = st->n;
  if (a.tas_bonus_argmax) {
    st->token = argmax_row(a.target_probs + (b * (a.k + 1) + st->n) * a.V, a.V);
  } else {
    st->sample = true;
    st->weights = kWQ;
  }
}

// Phase 1 for one request (TAS: validation only, see tas_walk). Returns a Status.
int32_t accept_chain(const VerifyArgs& a, int64_t b, RowState* st, std::vector<float>* scratch) {
  const int64_t k = a.k, V = a.V;
  const int64_t n = a.num_drafts ? a.num_drafts[b] : k;
  if (n < 0 || n > k) return kBadNumDrafts;
  const int64_t* x = a.draft_tokens + b * k;
  for (int64_t j = 0; j < n; ++j) {
    if (x[j] < 0 || x[j] >= V) return kBadDraftToken;
  }
  const float* q = a.target_probs + b * (k + 1) * V;
  st->n = n;
  st->pos = n;
  auto reject_at = [&](int64_t j) {
    st->pos = j;
    st->row = j;
    st->draft = x[j];
  };
  switch (a.strategy) {
    case kSps:
    case kCactus:
    case kInterp: {
      for (int64_t j = 0; j < n; ++j) {
        const float t = q[j * V + x[j]];
        const float s = a.draft_probs ? a.draft_probs[(b * k + j) * V + x[j]] : 1.0f;
        const float u = a.u_acc[b * k + j];
        float target = t;
        if (a.strategy == kCactus) {
          const CactusRow cr = cactus_row(t, a.cactus_delta);
          target = cr.h;
          st->cactus_h = cr.h;
          st->cactus_scale = cr.scale;
        } else if (a.strategy == kInterp) {
          target = interp_mix(t, s, a.interp_lambda, a.interp_rest);
        }
        if (!accept_mul(u, s, target)) {
          reject_at(j);
          break;
        }
      }
      st->sample = true;
      if (st->pos < n) {
        st->weights = a.strategy == kCactus ? kWCactus : kWSps;  // interp: SpS residual
      } else {
        st->row = n;
        st->weights = kWQ;
      }
      return kOk;
    }
    case kGreedy: {
      const float* src = a.target_logits ? a.target_logits + b * (k + 1) * V : q;
      for (int64_t j = 0; j <= n; ++j) {
        const int64_t g = argmax_row(src + j * V, V);
        if (j < n && x[j] == g) continue;
        st->pos = j;
        st->row = j;
        st->token = g;
        break;
      }
      return kOk;
    }
    case kTas:  // decided by tas_walk, all threads together
      st->tas_open = true;
      if (n == 0) tas_bonus(a, b, st);
      return kOk;
    case kTopk: {
      for (int64_t j = 0; j < n; ++j) {
        const float th = kth_largest(q + j * V, V, a.topk_k, scratch);
        const float t = q[j * V + x[j]];
        if (t > 0.0f && t >= th) continue;
        reject_at(j);
        st->topk_theta = th;
        st->weights = kWTopk;
        st->sample = true;
        return kOk;
      }
      st->row = n;
      st->weights = kWQ;
      st->sample = true;
      return kOk;
    }
  }
  return kBadArgs;
}

// Phase 1 of TAS, called by every thread of the region (orphaned `omp for`s): row j of all open
// requests, entropy and argmax parts per chunk in parallel, then each open request combines its
// parts in chunk order (exact: integer entropy, first index of the maximum) and decides.
void tas_walk(const VerifyArgs& a, RowState* rows, TasPart* parts, int64_t C,
              const int32_t* status) {
  const int64_t B = a.B, k = a.k, V = a.V;
  for (int64_t j = 0; j < k; ++j) {
#pragma omp for schedule(static)
    for (int64_t item = 0; item < B * C; ++item) {
      const int64_t b = item / C, c = item % C;
      if (*status != kOk || !rows[b].tas_open) continue;
      const float* q = a.target_probs + (b * (k + 1) + j) * V;
      TasPart& t = parts[item];
      t.entropy = entropy_argmax_range(q, c * kChunk, std::min(V, (c + 1) * kChunk), &t.amax,
                                       &t.vmax);
    }
#pragma omp for schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      RowState* st = &rows[b];
      if (*status != kOk || !st->tas_open) continue;
      int64_t h = 0;
      const TasPart* best = &parts[b * C];
      for (int64_t c = 0; c < C; ++c) {
        const TasPart& t = parts[b * C + c];
        h += t.entropy;
        if (t.vmax > best->vmax) best = &t;
      }
      const float tau = tas_threshold(entropy_from_fixed(h), a.tas_eps, a.tas_alpha);
      const int64_t x = a.draft_tokens[b * k + j];
      if (a.target_probs[(b * (k + 1) + j) * V + x] > tau) {
        if (j + 1 == st->n) tas_bonus(a, b, st);
        continue;
      }
      st->tas_open = false;
      st->pos = j;
      st->row = j;
      st->draft = x;
      st->token = best->amax;
    }
  }
}

// Phase 3 for one request: combine partials, sample, write outputs.
void finish_row(const VerifyArgs& a, int64_t b, RowState* st, const Partial* parts, int64_t C) {
  if (st->sample) {
    int64_t token = 0;
    bool any = false;
    if (a.noise_mode == kRace) {
      Partial best{-2.0f, 0, 0};
      for (int64_t c = 0; c < C; ++c)
        if (race_better(parts[c].score, parts[c].index, best.score, best.index)) best = parts[c];
      any = best.score > 0.0f;
      token = best.index;
    } else {
      uint64_t total = 0;
      for (int64_t c = 0; c < C; ++c) total += parts[c].mass;
      any = total > 0;
      if (any) {
        uint64_t t = icdf_target(a.u_fin[b], total);
        int64_t c = 0;
        while (parts[c].mass <= t) t -= parts[c++].mass;
        token = icdf_find(*st, a, b, c * kChunk, std::min(a.V, (c + 1) * kChunk), t);
      }
    }
    if (!any && st->weights != kWQ) {  // empty residual: sample from q with the same noise
      st->weights = kWQ;
      token = sample_row_serial(*st, a, b, &any);
    }
    st->token = token;
  }
  const int64_t k = a.k;
  int64_t* out = a.tokens + b * (k + 1);
  const int64_t* x = a.draft_tokens + b * k;
  for (int64_t j = 0; j < st->pos; ++j) out[j] = x[j];
  out[st->pos] = st->token;
  for (int64_t j = st->pos + 1; j <= k; ++j) out[j] = -1;
  a.num_accepted[b] = st->pos;
}

}  // namespace
}  // namespace specbench

extern "C" int32_t specbench_verify_cpu(const specbench::VerifyArgs* args) {
  using namespace specbench;
  const VerifyArgs& a = *args;
  if (a.B < 0 || a.k < 0 || a.V < 1 || !a.target_probs || !a.tokens || !a.num_accepted)
    return kBadArgs;
  if (a.k > 0 && !a.draft_tokens) return kBadArgs;
  if (a.strategy < kGreedy || a.strategy > kInterp) return kBadArgs;
  const bool stochastic = a.strategy == kSps || a.strategy == kCactus || a.strategy == kInterp;
  if (stochastic && a.k > 0 && !a.u_acc) return kBadArgs;
  if (a.strategy != kGreedy && !(a.strategy == kTas && a.tas_bonus_argmax)) {
    if (a.noise_mode == kRace && !a.e_fin) return kBadArgs;
    if (a.noise_mode == kIcdf && !a.u_fin) return kBadArgs;
    if (a.noise_mode != kRace && a.noise_mode != kIcdf) return kBadArgs;
  }
  if (a.strategy == kTopk && a.topk_k < 1) return kBadArgs;
  const int64_t B = a.B;
  if (B == 0) return kOk;
  const int64_t C = (a.V + kChunk - 1) / kChunk;
  std::vector<RowState> rows(static_cast<size_t>(B));
  std::vector<Partial> parts(static_cast<size_t>(B * C));
  std::vector<TasPart> tas_parts(static_cast<size_t>(a.strategy == kTas ? B * C : 0));
  int32_t status = kOk;
  // Thread only when there is enough work to pay for the fork (~ a few us).
  const bool scan = a.strategy == kGreedy || a.strategy == kTas || a.strategy == kTopk;
  // A fork/join costs a few us, and far more when the cores are oversubscribed: only thread
  // work of a few hundred us (at B = 1 phase 1 is one row chain anyway).
  // TAS spends ~2 ns per token on its log, so its row walk pays for threads even at B = 1.
  const int64_t cost = a.strategy == kTas ? 8 : 1;
  const bool threaded = (B > 1 || a.strategy == kTas) &&
                        B * a.V * (scan ? a.k + 1 : 1) * cost >= (int64_t{1} << 18);
  (void)threaded;
#pragma omp parallel if (threaded)
  {
    std::vector<float> scratch;
#pragma omp for schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      const int32_t s = accept_chain(a, b, &rows[b], &scratch);
      if (s != kOk) {
#pragma omp atomic write
        status = s;
      }
    }
    if (a.strategy == kTas) tas_walk(a, rows.data(), tas_parts.data(), C, &status);
#pragma omp for schedule(static)
    for (int64_t item = 0; item < B * C; ++item) {
      const int64_t b = item / C, c = item % C;
      if (status != kOk || !rows[b].sample) continue;
      parts[item] = chunk_partial(rows[b], a, b, c * kChunk, std::min(a.V, (c + 1) * kChunk));
    }
#pragma omp for schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      if (status != kOk) continue;
      finish_row(a, b, &rows[b], &parts[b * C], C);
    }
  }
  return status;
}
