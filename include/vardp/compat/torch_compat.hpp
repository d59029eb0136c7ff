// LibTorch version differences live here and nowhere else (ARCHITECTURE "Conventions").
// vardp builds against Debian's LibTorch 1.13 (CPU) and the pip wheel's LibTorch 2.x (CUDA).
#pragma once
#include <torch/torch.h>
#include <torch/version.h>
#include <ATen/autocast_mode.h>

#include <optional>

// 1 where at::scaled_dot_product_attention takes an explicit `scale` (LibTorch >= 2.1).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define VARDP_HAS_FUSED_SDPA 1
#else
#define VARDP_HAS_FUSED_SDPA 0
#endif

namespace vardp::compat {

// CUDA autocast on this thread (bf16 mixed precision as the official trainer's
// torch.autocast('cuda', dtype=torch.bfloat16)); the cache of cast weights is cleared when
// disabling. The API moved from set_enabled/set_autocast_gpu_dtype to per-device calls in 2.4.
inline void set_cuda_autocast(bool enabled, at::ScalarType dtype = at::kBFloat16) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, enabled);
#else
  at::autocast::set_autocast_gpu_dtype(dtype);
  at::autocast::set_enabled(enabled);
#endif
  if (!enabled) at::autocast::clear_cache();
}

// Enables CUDA autocast for one scope.
class CudaAutocastScope {
 public:
  explicit CudaAutocastScope(bool enabled, at::ScalarType dtype = at::kBFloat16) : enabled_(enabled) {
    if (enabled_) set_cuda_autocast(true, dtype);
  }
  ~CudaAutocastScope() {
    if (enabled_) set_cuda_autocast(false);
  }
  CudaAutocastScope(const CudaAutocastScope&) = delete;
  CudaAutocastScope& operator=(const CudaAutocastScope&) = delete;

 private:
  bool enabled_;
};

// Type of the running-total arguments of c10::MemoryReportingInfoBase::reportMemoryUsage:
// int64_t in LibTorch 1.13, size_t in 2.x.
#if TORCH_VERSION_MAJOR >= 2
using MemoryTotal = size_t;
#else
using MemoryTotal = int64_t;
#endif

// softmax(q*scale @ k^T + mask) @ v, q/k/v shaped (B, H, L, c), mask broadcastable to
// (B, H, Lq, Lk) with 0 / -inf entries. On LibTorch >= 2.1 this is the fused kernel (what the
// official VAR code calls as F.scaled_dot_product_attention); before that, the explicit path below,
// which is the official code's own fallback (`slow_attn`) operation for operation, so results
// match the fixtures produced with PyTorch 1.13 bit for bit on CPU.
inline torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                                  const torch::Tensor& v,
                                                  const torch::Tensor& mask, double scale,
                                                  double dropout_p) {
#if VARDP_HAS_FUSED_SDPA
  c10::optional<torch::Tensor> m;
  if (mask.defined()) m = mask;
  return at::scaled_dot_product_attention(q, k, v, m, dropout_p, /*is_causal=*/false, scale);
#else
  torch::Tensor attn = torch::matmul(q.mul(scale), k.transpose(-2, -1));
  if (mask.defined()) attn = attn.add(mask);
  attn = attn.softmax(-1);
  if (dropout_p > 0) attn = torch::dropout(attn, dropout_p, /*train=*/true);
  return torch::matmul(attn, v);
#endif
}

// A generator on `device` in the state torch.Generator(device).manual_seed(seed) has, so seeded
// sampling reproduces the official code's draws on the same device and PyTorch version.
inline at::Generator make_generator(const torch::Device& device, uint64_t seed) {
  at::Generator gen = at::globalContext().defaultGenerator(device).clone();
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  }
  return gen;
}

}  // namespace vardp::compat
