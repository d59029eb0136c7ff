#include "vardp/dp/privatize.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include "vardp/util/error.hpp"
#include "vardp/util/rng.hpp"

namespace vardp::dp {

torch::Tensor clip_factors(const torch::Tensor& per_example_norms, double max_grad_norm) {
  return (max_grad_norm / (per_example_norms + 1e-6)).clamp_max(1.0);
}

torch::Tensor per_example_norms(const std::vector<torch::Tensor>& per_example_grads) {
  VARDP_CHECK(!per_example_grads.empty(), "no per-example gradients");
  const int64_t batch = per_example_grads[0].size(0);
  torch::Tensor sq = torch::zeros({batch}, per_example_grads[0].options().dtype(torch::kFloat64));
  for (const auto& g : per_example_grads) {
    VARDP_CHECK(g.size(0) == batch, "per-example gradients disagree on the batch size");
    sq += g.reshape({batch, -1}).to(torch::kFloat64).pow(2).sum(1);
  }
  return sq.sqrt();
}

std::vector<torch::Tensor> clipped_sum(const std::vector<torch::Tensor>& per_example_grads, double max_grad_norm,
                                       torch::Tensor* norms_out) {
  torch::Tensor norms = per_example_norms(per_example_grads);
  torch::Tensor factors = clip_factors(norms, max_grad_norm);
  std::vector<torch::Tensor> out;
  for (const auto& g : per_example_grads) {
    const int64_t batch = g.size(0);
    torch::Tensor f = factors.to(g.scalar_type()).view({batch, 1});
    out.push_back((g.reshape({batch, -1}) * f).sum(0).view(g.sizes().slice(1)));
  }
  if (norms_out) *norms_out = norms;
  return out;
}

torch::Tensor gaussian_noise(const torch::Tensor& like, double std, uint64_t seed, int64_t step) {
  rng::Stream stream(seed, rng::Purpose::dp_noise, static_cast<uint64_t>(step));
  at::Generator gen = at::detail::createCPUGenerator(stream.derive_seed());
  // Drawn on the CPU in float32 from a generator seeded only by (seed, step); moved to the
  // tensor's device afterwards so CPU and CUDA runs add the same noise.
  torch::Tensor noise = at::normal(0.0, std, like.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
  return noise.to(like.device(), like.scalar_type());
}

void privatize_in_place(torch::Tensor& flat_clipped_sum, const NoiseSpec& spec, int64_t step,
                        dist::TensorComm& comm) {
  VARDP_CHECK(spec.expected_lot_size > 0, "expected lot size must be positive");
  VARDP_CHECK(spec.noise_multiplier >= 0, "noise multiplier must be >= 0");
  if (comm.host().rank() == 0 && spec.noise_multiplier > 0)
    flat_clipped_sum.add_(gaussian_noise(flat_clipped_sum, spec.noise_multiplier * spec.max_grad_norm, spec.seed, step));
  comm.all_reduce(flat_clipped_sum, dist::ReduceOp::sum);
  flat_clipped_sum.div_(spec.expected_lot_size);
}

}  // namespace vardp::dp
