// The op bindings (torch.ops; binding_rows.cpp is the other torch-aware file): op schemas,
// shape/dtype checks, dispatch.
//
//   torch.ops.specbench.verify_cpu(...)  -> the C++ twin in verify_cpu.cpp (linked in), in
//       probability or logits mode
//   torch.ops.specbench.verify_cuda(...) -> the extern "C" launcher of a separately nvcc-built
//       libspecbench_verify_cuda.so, whose address and the CUDA stream arrive as integers from
//       Python (torch.cuda.current_stream().cuda_stream). No CUDA or c10/cuda header is needed,
//       so this file builds against the CPU-only torch wheel, and nothing here touches CUDA
//       unless verify_cuda is called.
// Both return (tokens, num_accepted, status); see returned_status.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <optional>
#include <string>
#include <tuple>

#include "verify.h"

namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;
using specbench::VerifyArgs;

void check_tensor(const Tensor& t, const char* name, at::ScalarType dtype,
                  std::initializer_list<int64_t> shape, const at::Device& device) {
  TORCH_CHECK(t.scalar_type() == dtype, "specbench verify: ", name, " must be ", dtype, ", got ",
              t.scalar_type());
  TORCH_CHECK(t.device() == device, "specbench verify: ", name, " is on ", t.device(),
              ", expected ", device);
  TORCH_CHECK(t.dim() == static_cast<int64_t>(shape.size()), "specbench verify: ", name,
              " must have ", shape.size(), " dims, got shape ", t.sizes());
  int64_t i = 0;
  for (int64_t s : shape) {
    TORCH_CHECK(t.size(i) == s, "specbench verify: ", name, " has shape ", t.sizes(),
                ", expected size ", s, " at dim ", i);
    ++i;
  }
  TORCH_CHECK(t.is_contiguous(), "specbench verify: ", name, " must be contiguous");
}

// The rule and the processing of one call (everything but the tensors).
struct Policy {
  int64_t strategy;
  double delta, tas_eps, tas_alpha, interp_lambda;
  int64_t topk_k;
  bool tas_bonus_argmax, target_is_logits, draft_is_logits;
  double temperature;
  int64_t top_k;
  bool validate;
};

const float* data_or_null(const OptTensor& t) { return t ? t->const_data_ptr<float>() : nullptr; }

// Checks every tensor and fills the argument block; allocates the outputs.
std::tuple<Tensor, Tensor> prepare(VerifyArgs* a, const Tensor& target, const OptTensor& draft,
                                   const Tensor& draft_tokens, const OptTensor& seeds,
                                   const OptTensor& counters, const OptTensor& num_drafts,
                                   const OptTensor& target_logits, const Policy& p) {
  TORCH_CHECK(target.dim() == 3, "specbench verify: target must be [B, k+1, V], got ",
              target.sizes());
  const int64_t B = target.size(0), k = target.size(1) - 1, V = target.size(2);
  TORCH_CHECK(k >= 0 && V >= 1, "specbench verify: target must be [B, k+1, V] with V >= 1");
  TORCH_CHECK(p.strategy >= specbench::kGreedy && p.strategy <= specbench::kInterp,
              "specbench verify: unknown strategy id ", p.strategy);
  const at::Device dev = target.device();
  check_tensor(target, "target", at::kFloat, {B, k + 1, V}, dev);
  check_tensor(draft_tokens, "draft_tokens", at::kLong, {B, k}, dev);
  if (draft) check_tensor(*draft, "draft", at::kFloat, {B, k, V}, dev);
  if (target_logits) check_tensor(*target_logits, "target_logits", at::kFloat, {B, k + 1, V}, dev);
  if (num_drafts) check_tensor(*num_drafts, "num_drafts", at::kLong, {B}, dev);
  const bool noise = specbench::uses_noise(p.strategy, p.tas_bonus_argmax);
  TORCH_CHECK(!noise || (seeds && counters), "specbench verify: this strategy needs noise");
  if (seeds) check_tensor(*seeds, "seeds", at::kLong, {B}, dev);
  if (counters) check_tensor(*counters, "counters", at::kLong, {B}, dev);
  TORCH_CHECK(p.strategy != specbench::kTopk || p.topk_k >= 1, "specbench verify: topk needs K >= 1");
  TORCH_CHECK(V < (int64_t{1} << 31), "specbench verify: V must be < 2^31");

  Tensor tokens = at::empty({B, k + 1}, target.options().dtype(at::kLong));
  Tensor num_accepted = at::empty({B}, target.options().dtype(at::kLong));

  *a = VerifyArgs{};
  a->B = B;
  a->k = k;
  a->V = V;
  specbench::set_policy(a, p.strategy, p.delta, p.tas_eps, p.tas_alpha, p.interp_lambda,
                        p.topk_k, p.tas_bonus_argmax);
  a->validate = p.validate ? 1 : 0;
  a->target_is_logits = p.target_is_logits ? 1 : 0;
  a->draft_is_logits = p.draft_is_logits ? 1 : 0;
  a->temperature = static_cast<float>(p.temperature);
  a->top_k = p.top_k;
  a->target = target.const_data_ptr<float>();
  a->draft = data_or_null(draft);
  a->draft_tokens = draft_tokens.const_data_ptr<int64_t>();
  a->seeds = seeds ? seeds->const_data_ptr<int64_t>() : nullptr;
  a->counters = counters ? counters->const_data_ptr<int64_t>() : nullptr;
  a->num_drafts = num_drafts ? num_drafts->const_data_ptr<int64_t>() : nullptr;
  a->target_logits = data_or_null(target_logits);
  a->tokens = tokens.mutable_data_ptr<int64_t>();
  a->num_accepted = num_accepted.mutable_data_ptr<int64_t>();
  return {tokens, num_accepted};
}

// Input statuses (bad ids, bad values) come back to Python, which raises the reference's own
// ValueError or, without validation, a RuntimeError; anything else is an error here.
int64_t returned_status(int32_t s, const char* where) {
  TORCH_CHECK(s == specbench::kOk || s == specbench::kBadDraftToken ||
                  s == specbench::kBadNumDrafts || s == specbench::kBadValues,
              "specbench ", where, ": ", s == specbench::kBadArgs ? "invalid arguments"
                                                                   : "CUDA error",
              " (status ", s, ")");
  return s;
}

std::tuple<Tensor, Tensor, int64_t> verify_cpu(
    const Tensor& target, const OptTensor& draft, const Tensor& draft_tokens,
    const OptTensor& seeds, const OptTensor& counters, const OptTensor& num_drafts,
    const OptTensor& target_logits, int64_t strategy, double delta, double tas_eps,
    double tas_alpha, double interp_lambda, int64_t topk_k, bool tas_bonus_argmax,
    bool target_is_logits, bool draft_is_logits, double temperature, int64_t top_k,
    bool validate) {
  TORCH_CHECK(target.device().is_cpu(), "specbench verify_cpu: tensors must be on the CPU");
  const Policy p{strategy, delta, tas_eps, tas_alpha, interp_lambda, topk_k, tas_bonus_argmax,
                 target_is_logits, draft_is_logits, temperature, top_k, validate};
  VerifyArgs a;
  auto [tokens, accepted] = prepare(&a, target, draft, draft_tokens, seeds, counters, num_drafts,
                                    target_logits, p);
  const int64_t s = returned_status(specbench_verify_cpu(&a), "verify_cpu");
  return {tokens, accepted, s};
}

using CudaLauncher = int32_t (*)(const VerifyArgs*, void*, int32_t*, int32_t*, void*);

std::tuple<Tensor, Tensor, int64_t> verify_cuda(
    const Tensor& target, const OptTensor& draft, const Tensor& draft_tokens,
    const OptTensor& seeds, const OptTensor& counters, const OptTensor& num_drafts,
    const OptTensor& target_logits, int64_t strategy, double delta, double tas_eps,
    double tas_alpha, double interp_lambda, int64_t topk_k, bool tas_bonus_argmax,
    bool validate, const Tensor& workspace, const Tensor& tickets, const Tensor& flags,
    int64_t launcher, int64_t stream) {
  TORCH_CHECK(target.device().is_cuda(), "specbench verify_cuda: tensors must be on CUDA");
  TORCH_CHECK(launcher != 0, "specbench verify_cuda: the CUDA library is not loaded");
  const Policy p{strategy, delta, tas_eps, tas_alpha, interp_lambda, topk_k, tas_bonus_argmax,
                 false, false, 1.0, 0, validate};
  VerifyArgs a;
  auto [tokens, accepted] = prepare(&a, target, draft, draft_tokens, seeds, counters, num_drafts,
                                    target_logits, p);
  TORCH_CHECK(workspace.device() == target.device() && workspace.is_contiguous(),
              "specbench verify_cuda: bad workspace");
  TORCH_CHECK(tickets.device() == target.device() && tickets.scalar_type() == at::kInt &&
                  tickets.numel() >= a.B,
              "specbench verify_cuda: tickets must be int32 [>= B] on the device");
  TORCH_CHECK(flags.device() == target.device() && flags.scalar_type() == at::kInt &&
                  flags.numel() >= 1,
              "specbench verify_cuda: flags must be int32 [>= 1] on the device");
  auto fn = reinterpret_cast<CudaLauncher>(static_cast<intptr_t>(launcher));
  const int32_t s = fn(&a, workspace.mutable_data_ptr(), tickets.mutable_data_ptr<int32_t>(),
                       flags.mutable_data_ptr<int32_t>(),
                       reinterpret_cast<void*>(static_cast<intptr_t>(stream)));
  return {tokens, accepted, returned_status(s, "verify_cuda")};
}

}  // namespace

TORCH_LIBRARY(specbench, m) {
  m.def(
      "verify_cpu(Tensor target, Tensor? draft, Tensor draft_tokens, Tensor? seeds, "
      "Tensor? counters, Tensor? num_drafts, Tensor? target_logits, int strategy, float delta, "
      "float tas_eps, float tas_alpha, float interp_lambda, int topk_k, bool tas_bonus_argmax, "
      "bool target_is_logits, bool draft_is_logits, float temperature, int top_k, "
      "bool validate) -> (Tensor, Tensor, int)",
      &verify_cpu);
  m.def(
      "verify_cuda(Tensor target, Tensor? draft, Tensor draft_tokens, Tensor? seeds, "
      "Tensor? counters, Tensor? num_drafts, Tensor? target_logits, int strategy, float delta, "
      "float tas_eps, float tas_alpha, float interp_lambda, int topk_k, bool tas_bonus_argmax, "
      "bool validate, Tensor workspace, Tensor tickets, Tensor flags, int launcher, "
      "int stream) -> (Tensor, Tensor, int)",
      &verify_cuda);
}
