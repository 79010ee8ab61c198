// The engine's entry to the CPU twin: Python lists in, Python lists out (the Python module of
// the CPU extension, `verify_rows`), and the entry of the few-row matmul (`few_row_linear`).
//
// Right after a model forward pass the CPU's caches hold weights, not code: every torch op
// then costs tens of microseconds, most of it the dispatcher's own code coming back into cache,
// and the op-based path (binding.cpp: build the id, count, seed and counter tensors, dispatch,
// read the result back with .tolist()) costs more than the kernel itself. This entry takes the
// small integer inputs as lists, checks shapes itself, runs the kernel in logits mode and
// returns each row's accepted count and emitted token as lists: one call, no dispatcher, the
// same kernel and so the same tokens (tests/test_kernels.py compares them).
#include <torch/extension.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "verify.h"

namespace {

using at::Tensor;

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("specbench verify_rows: " + what);
}

void check_rows(const Tensor& t, const char* name, int64_t rows_per_batch, int64_t B, int64_t V) {
  require(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous(),
          std::string(name) + " must be a contiguous float32 CPU tensor");
  require(t.dim() == 3 && t.size(0) == B && t.size(1) == rows_per_batch && t.size(2) == V,
          std::string(name) + " has the wrong shape");
}

// (status, accepted [B], emitted [B]). `target` [B, k+1, V] raw logits; `draft` [B, k, V]
// probabilities or None (one-hot drafts); `draft_tokens` B*k ids, row-major, padded past each
// row's `num_drafts` (empty: every row drafted k); `seeds`, `counters`: each row's noise.
pybind11::tuple verify_rows(const Tensor& target, const std::optional<Tensor>& draft,
                            const std::vector<int64_t>& draft_tokens,
                            const std::vector<int64_t>& num_drafts,
                            const std::vector<int64_t>& seeds,
                            const std::vector<int64_t>& counters, int64_t strategy, double delta,
                            double tas_eps, double tas_alpha, double interp_lambda,
                            int64_t topk_k, bool tas_bonus_argmax, double temperature,
                            int64_t top_k) {
  require(target.dim() == 3, "target must be [B, k+1, V]");
  const int64_t B = target.size(0), k = target.size(1) - 1, V = target.size(2);
  require(k >= 0 && V >= 1 && V < (int64_t{1} << 31), "target must be [B, k+1, V], V >= 1");
  check_rows(target, "target", k + 1, B, V);
  if (draft) check_rows(*draft, "draft", k, B, V);
  require(static_cast<int64_t>(draft_tokens.size()) == B * k, "draft_tokens must hold B*k ids");
  require(num_drafts.empty() || static_cast<int64_t>(num_drafts.size()) == B,
          "num_drafts must be empty or hold B counts");
  const bool noise = specbench::uses_noise(strategy, tas_bonus_argmax);
  require(!noise || (static_cast<int64_t>(seeds.size()) == B &&
                     static_cast<int64_t>(counters.size()) == B),
          "this strategy needs B seeds and B counters");

  std::vector<int64_t> tokens(static_cast<size_t>(B * (k + 1))), accepted(static_cast<size_t>(B));
  specbench::VerifyArgs a{};
  a.B = B;
  a.k = k;
  a.V = V;
  specbench::set_policy(&a, strategy, delta, tas_eps, tas_alpha, interp_lambda, topk_k,
                        tas_bonus_argmax);
  a.target_is_logits = 1;
  a.temperature = static_cast<float>(temperature);
  a.top_k = top_k;
  a.target = target.const_data_ptr<float>();
  a.draft = draft ? draft->const_data_ptr<float>() : nullptr;
  a.draft_tokens = draft_tokens.data();
  a.seeds = noise ? seeds.data() : nullptr;
  a.counters = noise ? counters.data() : nullptr;
  a.num_drafts = num_drafts.empty() ? nullptr : num_drafts.data();
  a.tokens = tokens.data();
  a.num_accepted = accepted.data();
  const int32_t status = specbench_verify_cpu(&a);
  require(status != specbench::kBadArgs, "invalid arguments");
  std::vector<int64_t> emitted(static_cast<size_t>(B));
  if (status == specbench::kOk) {
    for (int64_t b = 0; b < B; ++b) emitted[b] = tokens[b * (k + 1) + accepted[b]];
  }
  return pybind11::make_tuple(status, accepted, emitted);
}

}  // namespace

// few_row_matmul.cpp: the decoding steps' matrix products (specbench_cli/cpu_matmul.py)
at::Tensor few_row_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias,
                          const std::string& isa);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("verify_rows", &verify_rows, "One verification step of the CPU twin, lists in and out");
  m.def(
      "few_row_linear",
      [](const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, const std::string& isa) {
        return few_row_linear(x, w, bias.has_value() ? *bias : Tensor(), isa);
      },
      "x @ w.T (+ bias) for 1-16 rows of x, each weight read once", pybind11::arg("x"), pybind11::arg("w"),
      pybind11::arg("bias") = pybind11::none(), pybind11::arg("isa") = "auto");
}
