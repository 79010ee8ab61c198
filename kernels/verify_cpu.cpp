// specbench verification, C++ CPU twin of verify_cuda.cu (torch-free).
//
// Phases inside one OpenMP parallel region (torch's own libgomp is reused: same soname):
//   0. with `validate`, the value checks of every row (cpu_inputs.h), the first read of the rows;
//      in logits mode, the scan rules' rows are materialized (cpu_inputs.h).
//   1. per request: acceptance chain. Lazy strategies (sps, cactus, interp) gather 2 values per
//      position (in logits mode: each row's normalizer, then 2 values); greedy and topk scan rows
//      0..a until the first rejection. TAS, whose entropy costs a log per token, walks its rows
//      in step across all threads: each row's (request, vocabulary chunk) parts in parallel,
//      then every open request decides. Accept uniforms come from philox.h.
//   2. per (request, vocabulary chunk): the exact fixed-point mass of the final row's weights.
//   3. per request: combine chunk masses in chunk order, re-scan one chunk for the row's final
//      draw, fall back to q when the residual is empty, write the outputs.
// Every decision uses the shared policy code in verify.h, so results do not depend on the chunk
// size or the thread count. Compile with -ffp-contract=off (exactness) and -fno-trapping-math
// (lets g++ vectorise the guarded divisions; it changes no result).
#include "verify.h"

#include "cpu_inputs.h"
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
    st->token = argmax_row(a.target + (b * (a.k + 1) + st->n) * a.V, a.V);
  } else {
    st->sample = true;
    st->weights = kWQ;
  }
}

// Row value at token x: a probability, or, in logits mode, computed from the row's normalizer,
// which *norm receives (and `exps` the row's exponentials).
float value_at(const VerifyArgs& a, const float* row, bool logits, int64_t x, LogitRow* norm,
               std::vector<float>* scratch, float* exps) {
  if (!logits) return row[x];
  *norm = logit_row(row, a.V, a.temperature, a.top_k, scratch, exps);
  return logit_prob(processed_logit(row[x], a.temperature), x, *norm, a.temperature == 0.0f);
}

// Phase 1 of sps, cactus and interp for one request: the accept chain over gathered values.
// Logits mode: `qbuf` / `pbuf` (V floats each, or null) end up holding the final row's
// probabilities.
void lazy_chain(const VerifyArgs& a, int64_t b, RowState* st, std::vector<float>* scratch,
                float* qbuf, float* pbuf) {
  const int64_t k = a.k, V = a.V, n = st->n;
  const bool greedy = a.temperature == 0.0f;
  const int64_t* x = a.draft_tokens + b * k;
  const float* q = a.target + b * (k + 1) * V;
  LogitRow qn{}, pn{};
  st->row = n;
  st->weights = kWQ;
  st->sample = true;
  for (int64_t j = 0; j < n; ++j) {
    const float t = value_at(a, q + j * V, a.target_is_logits, x[j], &qn, scratch, qbuf);
    const float s = a.draft ? value_at(a, a.draft + (b * k + j) * V, a.draft_is_logits, x[j],
                                       &pn, scratch, pbuf)
                            : 1.0f;
    const float u = accept_uniform(a.seeds[b], a.counters[b], j);
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
      st->pos = st->row = j;
      st->draft = x[j];
      st->draft_p = s;
      st->weights = a.strategy == kCactus ? kWCactus : kWSps;  // interp: SpS residual
      break;
    }
  }
  if (!a.target_is_logits) return;
  if (st->row == n) qn = logit_row(q + n * V, V, a.temperature, a.top_k, scratch, qbuf);
  exps_to_probs(qbuf, V, qn, greedy);
  st->q_probs = qbuf;
  if (pbuf && st->row < n) {
    exps_to_probs(pbuf, V, pn, greedy);
    st->p_probs = pbuf;
  }
}

// Phase 1 for one request (TAS: validation only, see tas_walk). Returns a Status.
int32_t accept_chain(const VerifyArgs& a, int64_t b, RowState* st, std::vector<float>* scratch,
                     const Materialized& mat) {
  const int64_t k = a.k, V = a.V;
  const int64_t n = a.num_drafts ? a.num_drafts[b] : k;
  if (n < 0 || n > k) return kBadNumDrafts;
  const int64_t* x = a.draft_tokens + b * k;
  for (int64_t j = 0; j < n; ++j) {
    if (x[j] < 0 || x[j] >= V) return kBadDraftToken;
  }
  const float* q = a.target + b * (k + 1) * V;
  st->n = n;
  st->pos = n;
  switch (a.strategy) {
    case kSps:
    case kCactus:
    case kInterp:
      lazy_chain(a, b, st, scratch, mat.lazy_q ? mat.lazy_q.get() + b * V : nullptr,
                 mat.lazy_p ? mat.lazy_p.get() + b * V : nullptr);
      return kOk;
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
        st->pos = st->row = j;
        st->draft = x[j];
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
      const float* q = a.target + (b * (k + 1) + j) * V;
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
      if (a.target[(b * (k + 1) + j) * V + x] > tau) {
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

// Phase 3 for one request: combine chunk masses, sample, write outputs.
void finish_row(const VerifyArgs& a, int64_t b, RowState* st, const uint64_t* mass, int64_t C) {
  if (st->sample) {
    uint64_t total = 0;
    for (int64_t c = 0; c < C; ++c) total += mass[c];
    int64_t token = 0;
    if (total > 0) {
      uint64_t t = icdf_target(final_draw(a.seeds[b], a.counters[b]), total);
      int64_t c = 0;
      while (mass[c] <= t) t -= mass[c++];
      token = icdf_find(*st, a, b, c * kChunk, std::min(a.V, (c + 1) * kChunk), t);
    } else if (st->weights != kWQ) {  // empty residual: sample from q with the same draw
      st->weights = kWQ;
      bool any = false;
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

// Whether to fork threads: only for work of a few hundred us (a fork costs a few us, far more
// on an oversubscribed machine). A lazy rule at B = 1 reads one chain and one row: one thread,
// whatever the mode. TAS spends ~2 ns per token on its log and the logits mode of the scan
// rules one exp per token of every row, so their row walks pay for threads even at B = 1.
bool worth_threads(const VerifyArgs& a) {
  const bool scan = a.strategy == kGreedy || a.strategy == kTas || a.strategy == kTopk;
  const bool costly = a.strategy == kTas || (scan && a.target_is_logits);
  int64_t work = a.B * a.V * (scan || a.target_is_logits ? a.k + 1 : 1) * (costly ? 8 : 1);
  if (a.validate) work += a.B * a.V * (2 * a.k + 1);
  return (a.B > 1 || costly) && work >= (int64_t{1} << 18);
}

int32_t check_args(const VerifyArgs& a) {
  if (a.B < 0 || a.k < 0 || a.V < 1 || !a.target || !a.tokens || !a.num_accepted) return kBadArgs;
  if (a.k > 0 && !a.draft_tokens) return kBadArgs;
  if (a.strategy < kGreedy || a.strategy > kInterp) return kBadArgs;
  const bool noise = uses_noise(a.strategy, a.tas_bonus_argmax != 0);
  if (noise && (!a.seeds || !a.counters)) return kBadArgs;
  if (a.strategy == kTopk && a.topk_k < 1) return kBadArgs;
  if ((a.draft_is_logits && !a.target_is_logits) || a.temperature < 0.0f) return kBadArgs;
  return kOk;
}

}  // namespace
}  // namespace specbench

extern "C" int32_t specbench_verify_cpu(const specbench::VerifyArgs* args) {
  using namespace specbench;
  const VerifyArgs& a = *args;
  if (const int32_t bad = check_args(a); bad != kOk) return bad;
  const int64_t B = a.B;
  if (B == 0) return kOk;
  Materialized mat;
  const VerifyArgs run = materialized_args(a, &mat);
  const int64_t C = (a.V + kChunk - 1) / kChunk;
  std::vector<RowState> rows(static_cast<size_t>(B));
  std::vector<uint64_t> mass(static_cast<size_t>(B * C));
  std::vector<TasPart> tas_parts(static_cast<size_t>(a.strategy == kTas ? B * C : 0));
  int32_t status = kOk, bad_values = 0;
  const int64_t checks = a.validate ? check_items(a) : 0;
  const bool threaded = worth_threads(a);
  (void)threaded;
#pragma omp parallel if (threaded)
  {
    std::vector<float> scratch;
#pragma omp for schedule(static) reduction(| : bad_values)
    for (int64_t item = 0; item < checks; ++item) bad_values |= row_values_ok(a, item) ? 0 : 1;
#pragma omp for schedule(static)
    for (int64_t item = 0; item < mat.rows; ++item) materialize_row(a, mat, item, &scratch);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      const int32_t s = accept_chain(run, b, &rows[b], &scratch, mat);
      if (s != kOk) {
#pragma omp atomic write
        status = s;
      }
    }
    if (a.strategy == kTas) tas_walk(run, rows.data(), tas_parts.data(), C, &status);
#pragma omp for schedule(static)
    for (int64_t item = 0; item < B * C; ++item) {
      const int64_t b = item / C, c = item % C;
      if (status != kOk || !rows[b].sample) continue;
      mass[item] = chunk_mass(rows[b], run, b, c * kChunk, std::min(a.V, (c + 1) * kChunk));
    }
#pragma omp for schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      if (status != kOk) continue;
      finish_row(run, b, &rows[b], &mass[b * C], C);
    }
  }
  if (status == kOk && bad_values) return kBadValues;
  return status;
}
