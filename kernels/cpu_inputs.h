// specbench CPU twin: the value checks of the first pass and the logits-mode rows of the scan
// rules. Header-only, included by verify_cpu.cpp alone; torch-free.
//
// Value checks (VerifyArgs::validate) follow specbench_cli/strategies/inputs.py: probability rows
// nonnegative and not NaN, rows that take part summing to 1 within kSumTol; logits rows without
// NaN and, when sampling, with a finite maximum. A failure only sets a flag: the caller reruns the
// Python checks to raise the exact ValueError. Draft ids and num_drafts are checked by the
// acceptance chain (kBadDraftToken, kBadNumDrafts).
#pragma once

#include "cpu_rows.h"
#include "verify.h"

#include <memory>
#include <vector>

namespace specbench {
namespace cpu {

// Rows the value checks visit: target rows, then draft rows, then greedy's target_logits rows.
inline int64_t check_items(const VerifyArgs& a) {
  const int64_t target = a.B * (a.k + 1);
  return target + (a.draft ? a.B * a.k : 0) + (a.target_logits ? target : 0);
}

inline bool row_values_ok(const VerifyArgs& a, int64_t item) {
  const int64_t k = a.k, V = a.V, target = a.B * (k + 1);
  const bool sampling = a.temperature != 0.0f;
  if (item >= target && !(a.draft && item < target + a.B * k)) {  // target_logits row
    return logits_row_ok(a.target_logits + (item - target - (a.draft ? a.B * k : 0)) * V, V,
                         false);
  }
  const bool is_target = item < target;
  const int64_t r = is_target ? item : item - target;
  const int64_t b = r / (is_target ? k + 1 : k), j = r % (is_target ? k + 1 : k);
  int64_t n = a.num_drafts ? a.num_drafts[b] : k;
  n = n < 0 ? 0 : (n > k ? k : n);  // out of range: reported by the acceptance chain
  const float* row = (is_target ? a.target : a.draft) + r * V;
  if (is_target ? a.target_is_logits : a.draft_is_logits) return logits_row_ok(row, V, sampling);
  return probs_row_ok(row, V, is_target ? j <= n : j < n);
}

// Logits mode. Scan rules (greedy, tas, topk) read whole target rows, so their rows are
// materialized once: probabilities (tas, topk; topk's draft rows too) or, for greedy, processed
// logits (only when the temperature divides); the phases then run in probability mode. Lazy
// rules (sps, cactus, interp) normalize only the rows their chain reaches, and keep one row per
// request (`lazy_q`, `lazy_p`: the exponentials of the current row, then the final row's
// probabilities).
struct Materialized {
  std::unique_ptr<float[]> target, draft;
  int64_t rows = 0;  // target rows, then draft rows
  std::unique_ptr<float[]> lazy_q, lazy_p;  // [B, V] each
};

inline VerifyArgs materialized_args(const VerifyArgs& a, Materialized* m) {
  VerifyArgs run = a;
  const bool scan = a.strategy == kGreedy || a.strategy == kTas || a.strategy == kTopk;
  if (!a.target_is_logits) return run;
  if (!scan) {
    m->lazy_q.reset(new float[static_cast<size_t>(a.B * a.V)]);
    if (a.draft_is_logits) m->lazy_p.reset(new float[static_cast<size_t>(a.B * a.V)]);
    return run;
  }
  const int64_t target = a.B * (a.k + 1), draft = a.B * a.k;
  run.target_is_logits = run.draft_is_logits = 0;
  if (a.strategy == kGreedy) {
    run.target_logits = a.target;  // processed == raw at temperature 0 or 1
    if (a.temperature == 0.0f || a.temperature == 1.0f) return run;
  }
  m->target.reset(new float[static_cast<size_t>(target * a.V)]);
  m->rows = target;
  if (a.strategy == kGreedy) {
    run.target_logits = m->target.get();
    return run;
  }
  run.target = m->target.get();
  if (a.strategy == kTopk && a.draft && a.draft_is_logits) {
    m->draft.reset(new float[static_cast<size_t>(draft * a.V)]);
    m->rows += draft;
    run.draft = m->draft.get();
  }
  return run;
}

// Row `item` of the materialized rows (see Materialized).
SB_CLONES void materialize_row(const VerifyArgs& a, const Materialized& m, int64_t item,
                               std::vector<float>* scratch) {
  const int64_t V = a.V, target = a.B * (a.k + 1);
  const bool is_target = item < target;
  const int64_t r = is_target ? item : item - target;
  const float* l = (is_target ? a.target : a.draft) + r * V;
  float* out = (is_target ? m.target : m.draft).get() + r * V;
  if (a.strategy == kGreedy) {
    for (int64_t i = 0; i < V; ++i) out[i] = processed_logit(l[i], a.temperature);
    return;
  }
  exps_to_probs(out, V, logit_row(l, V, a.temperature, a.top_k, scratch, out),
                a.temperature == 0.0f);
}

}  // namespace cpu
}  // namespace specbench
