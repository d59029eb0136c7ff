#include "vardp/dp/privatize.hpp"

#include "vardp/util/error.hpp"

namespace vardp::dp {

torch::Tensor clip_factors(const torch::Tensor& per_example_norms, double max_grad_norm) {
  return (max_grad_norm * (1.0 - kClipSafety) / (per_example_norms + 1e-6)).clamp_max(1.0);
}

torch::Tensor gaussian_noise(const torch::Tensor& like, double std, const RunSecret& secret, int64_t step) {
  VARDP_CHECK(step >= 0, "noise of a negative step");
  torch::Tensor noise = torch::empty(like.sizes(), torch::TensorOptions().dtype(torch::kFloat32));
  secure_gaussian_noise(noise.data_ptr<float>(), static_cast<uint64_t>(noise.numel()), std, secret,
                        static_cast<uint64_t>(step));
  return noise.to(like.device(), like.scalar_type());
}

void privatize_in_place(torch::Tensor& flat_clipped_sum, const NoiseSpec& spec, int64_t step,
                        dist::TensorComm& comm) {
  VARDP_CHECK(spec.expected_lot_size > 0, "expected lot size must be positive");
  VARDP_CHECK(spec.noise_multiplier >= 0, "noise multiplier must be >= 0");
  if (comm.host().rank() == 0 && spec.noise_multiplier > 0) {
    VARDP_CHECK(spec.secret, "DP noise needs the run secret (NoiseSpec::secret)");
    const double std = spec.noise_multiplier * spec.max_grad_norm;
    if (spec.prefetcher) {
      // Drawn ahead by the same sampler from the same (secret, step): identical values.
      NoisePrefetcher& pf = *spec.prefetcher;
      VARDP_CHECK(pf.numel() == static_cast<uint64_t>(flat_clipped_sum.numel()) && pf.std() == std,
                  "noise prefetcher set up for ", pf.numel(), " coordinates at std ", pf.std(), ", the step needs ",
                  flat_clipped_sum.numel(), " at ", std);
      std::vector<float> noise = pf.take(static_cast<uint64_t>(step));
      torch::Tensor t = torch::from_blob(noise.data(), {static_cast<int64_t>(noise.size())}, torch::kFloat32);
      flat_clipped_sum.add_(t.to(flat_clipped_sum.device(), flat_clipped_sum.scalar_type()).view_as(flat_clipped_sum));
    } else {
      flat_clipped_sum.add_(gaussian_noise(flat_clipped_sum, std, *spec.secret, step));
    }
  }
  comm.all_reduce(flat_clipped_sum, dist::ReduceOp::sum);
  flat_clipped_sum.div_(spec.expected_lot_size);
}

}  // namespace vardp::dp
