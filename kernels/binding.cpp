// The only translation unit that includes torch: op schemas, shape/dtype checks, dispatch.
//
//   torch.ops.specbench.verify_cpu(...)  -> the C++ twin in verify_cpu.cpp (linked in)
//   torch.ops.specbench.verify_cuda(...) -> the extern "C" launcher of a separately nvcc-built
//       libspecbench_verify_cuda.so, whose address and the CUDA stream arrive as integers from
//       Python (torch.cuda.current_stream().cuda_stream). No CUDA or c10/cuda header is needed,
//       so this file builds against the CPU-only torch wheel, and nothing here touches CUDA
//       unless verify_cuda is called.
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

const char* status_text(int32_t s) {
  switch (s) {
    case specbench::kBadArgs: return "invalid arguments";
    case specbench::kBadDraftToken: return "a draft token id is outside [0, V)";
    case specbench::kBadNumDrafts: return "num_drafts outside [0, k]";
    default: return "CUDA error";
  }
}

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

// Validates every input and fills the argument block; allocates the outputs.
std::tuple<Tensor, Tensor> prepare(VerifyArgs* a, const Tensor& target_probs,
                                   const OptTensor& draft_probs, const Tensor& draft_tokens,
                                   const OptTensor& u_acc, const OptTensor& e_fin,
                                   const OptTensor& u_fin, const OptTensor& num_drafts,
                                   const OptTensor& target_logits, int64_t strategy,
                                   int64_t noise_mode, double delta, double tas_eps,
                                   double tas_alpha, double interp_lambda, int64_t topk_k,
                                   bool tas_bonus_argmax) {
  TORCH_CHECK(target_probs.dim() == 3, "specbench verify: target_probs must be [B, k+1, V], got ",
              target_probs.sizes());
  const int64_t B = target_probs.size(0), k = target_probs.size(1) - 1, V = target_probs.size(2);
  TORCH_CHECK(k >= 0 && V >= 1, "specbench verify: target_probs must be [B, k+1, V] with V >= 1");
  TORCH_CHECK(strategy >= specbench::kGreedy && strategy <= specbench::kInterp,
              "specbench verify: unknown strategy id ", strategy);
  TORCH_CHECK(noise_mode == specbench::kRace || noise_mode == specbench::kIcdf,
              "specbench verify: unknown noise mode ", noise_mode);
  const at::Device dev = target_probs.device();
  check_tensor(target_probs, "target_probs", at::kFloat, {B, k + 1, V}, dev);
  check_tensor(draft_tokens, "draft_tokens", at::kLong, {B, k}, dev);
  if (draft_probs) check_tensor(*draft_probs, "draft_probs", at::kFloat, {B, k, V}, dev);
  if (target_logits) check_tensor(*target_logits, "target_logits", at::kFloat, {B, k + 1, V}, dev);
  if (num_drafts) check_tensor(*num_drafts, "num_drafts", at::kLong, {B}, dev);
  const bool stochastic = strategy == specbench::kSps || strategy == specbench::kCactus ||
                          strategy == specbench::kInterp;
  const bool samples = strategy != specbench::kGreedy &&
                       !(strategy == specbench::kTas && tas_bonus_argmax);
  if (u_acc) check_tensor(*u_acc, "u_acc", at::kFloat, {B, k}, dev);
  TORCH_CHECK(!stochastic || u_acc, "specbench verify: this strategy needs u_acc [B, k]");
  if (e_fin) check_tensor(*e_fin, "e_fin", at::kFloat, {B, V}, dev);
  if (u_fin) check_tensor(*u_fin, "u_fin", at::kFloat, {B}, dev);
  if (samples && noise_mode == specbench::kRace)
    TORCH_CHECK(e_fin, "specbench verify: race noise needs e_fin [B, V]");
  if (samples && noise_mode == specbench::kIcdf)
    TORCH_CHECK(u_fin, "specbench verify: icdf noise needs u_fin [B]");
  TORCH_CHECK(strategy != specbench::kTopk || topk_k >= 1, "specbench verify: topk needs K >= 1");
  TORCH_CHECK(V < (int64_t{1} << 31), "specbench verify: V must be < 2^31");

  Tensor tokens = at::empty({B, k + 1}, target_probs.options().dtype(at::kLong));
  Tensor num_accepted = at::empty({B}, target_probs.options().dtype(at::kLong));

  *a = VerifyArgs{};
  a->B = B;
  a->k = k;
  a->V = V;
  a->strategy = static_cast<int32_t>(strategy);
  a->noise_mode = static_cast<int32_t>(noise_mode);
  a->cactus_delta = static_cast<float>(delta);
  a->tas_eps = static_cast<float>(tas_eps);
  a->tas_alpha = static_cast<float>(tas_alpha);
  a->interp_lambda = static_cast<float>(interp_lambda);
  a->interp_rest = static_cast<float>(1.0 - interp_lambda);  // rounded once, as torch does
  a->topk_k = topk_k;
  a->tas_bonus_argmax = tas_bonus_argmax ? 1 : 0;
  a->target_probs = target_probs.const_data_ptr<float>();
  a->draft_probs = draft_probs ? draft_probs->const_data_ptr<float>() : nullptr;
  a->draft_tokens = draft_tokens.const_data_ptr<int64_t>();
  a->u_acc = u_acc ? u_acc->const_data_ptr<float>() : nullptr;
  a->e_fin = e_fin ? e_fin->const_data_ptr<float>() : nullptr;
  a->u_fin = u_fin ? u_fin->const_data_ptr<float>() : nullptr;
  a->num_drafts = num_drafts ? num_drafts->const_data_ptr<int64_t>() : nullptr;
  a->target_logits = target_logits ? target_logits->const_data_ptr<float>() : nullptr;
  a->tokens = tokens.mutable_data_ptr<int64_t>();
  a->num_accepted = num_accepted.mutable_data_ptr<int64_t>();
  return {tokens, num_accepted};
}

std::tuple<Tensor, Tensor> verify_cpu(const Tensor& target_probs, const OptTensor& draft_probs,
                                      const Tensor& draft_tokens, const OptTensor& u_acc,
                                      const OptTensor& e_fin, const OptTensor& u_fin,
                                      const OptTensor& num_drafts,
                                      const OptTensor& target_logits, int64_t strategy,
                                      int64_t noise_mode, double delta, double tas_eps,
                                      double tas_alpha, double interp_lambda, int64_t topk_k,
                                      bool tas_bonus_argmax) {
  TORCH_CHECK(target_probs.device().is_cpu(), "specbench verify_cpu: tensors must be on the CPU");
  VerifyArgs a;
  auto out = prepare(&a, target_probs, draft_probs, draft_tokens, u_acc, e_fin, u_fin, num_drafts,
                     target_logits, strategy, noise_mode, delta, tas_eps, tas_alpha,
                     interp_lambda, topk_k, tas_bonus_argmax);
  const int32_t s = specbench_verify_cpu(&a);
  TORCH_CHECK(s == specbench::kOk, "specbench verify_cpu: ", status_text(s));
  return out;
}

using CudaLauncher = int32_t (*)(const VerifyArgs*, void*, int32_t*, void*);

std::tuple<Tensor, Tensor> verify_cuda(const Tensor& target_probs, const OptTensor& draft_probs,
                                       const Tensor& draft_tokens, const OptTensor& u_acc,
                                       const OptTensor& e_fin, const OptTensor& u_fin,
                                       const OptTensor& num_drafts,
                                       const OptTensor& target_logits, int64_t strategy,
                                       int64_t noise_mode, double delta, double tas_eps,
                                       double tas_alpha, double interp_lambda, int64_t topk_k,
                                       bool tas_bonus_argmax, const Tensor& workspace,
                                       const Tensor& counters, int64_t launcher, int64_t stream) {
  TORCH_CHECK(target_probs.device().is_cuda(), "specbench verify_cuda: tensors must be on CUDA");
  TORCH_CHECK(launcher != 0, "specbench verify_cuda: the CUDA library is not loaded");
  VerifyArgs a;
  auto out = prepare(&a, target_probs, draft_probs, draft_tokens, u_acc, e_fin, u_fin, num_drafts,
                     target_logits, strategy, noise_mode, delta, tas_eps, tas_alpha,
                     interp_lambda, topk_k, tas_bonus_argmax);
  TORCH_CHECK(workspace.device() == target_probs.device() && workspace.is_contiguous(),
              "specbench verify_cuda: bad workspace");
  TORCH_CHECK(counters.device() == target_probs.device() && counters.scalar_type() == at::kInt &&
                  counters.numel() >= a.B,
              "specbench verify_cuda: counters must be int32 [>= B] on the device");
  auto fn = reinterpret_cast<CudaLauncher>(static_cast<intptr_t>(launcher));
  const int32_t s = fn(&a, workspace.mutable_data_ptr(), counters.mutable_data_ptr<int32_t>(),
                       reinterpret_cast<void*>(static_cast<intptr_t>(stream)));
  TORCH_CHECK(s == specbench::kOk, "specbench verify_cuda: ", status_text(s), " (status ", s,
              ")");
  return out;
}

}  // namespace

TORCH_LIBRARY(specbench, m) {
  m.def(
      "verify_cpu(Tensor target_probs, Tensor? draft_probs, Tensor draft_tokens, Tensor? u_acc, "
      "Tensor? e_fin, Tensor? u_fin, Tensor? num_drafts, Tensor? target_logits, int strategy, "
      "int noise_mode, float delta, float tas_eps, float tas_alpha, float interp_lambda, "
      "int topk_k, bool tas_bonus_argmax) -> (Tensor, Tensor)",
      &verify_cpu);
  m.def(
      "verify_cuda(Tensor target_probs, Tensor? draft_probs, Tensor draft_tokens, Tensor? u_acc, "
      "Tensor? e_fin, Tensor? u_fin, Tensor? num_drafts, Tensor? target_logits, int strategy, "
      "int noise_mode, float delta, float tas_eps, float tas_alpha, float interp_lambda, "
      "int topk_k, bool tas_bonus_argmax, Tensor workspace, Tensor counters, int launcher, "
      "int stream) -> (Tensor, Tensor)",
      &verify_cuda);
}
