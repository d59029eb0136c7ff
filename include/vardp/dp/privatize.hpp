// The Gaussian mechanism of one DP-SGD step, applied to the sum of clipped per-example
// gradients (flattened over all trainable tensors).
#pragma once
#include <torch/torch.h>

#include <cstdint>

#include "vardp/dist/tensor_comm.hpp"
#include "vardp/dp/secret_coins.hpp"
#include "vardp/dp/secure_noise.hpp"

namespace vardp::dp {

// Clip factor per example: min(1, C (1 - kClipSafety) / (norm + 1e-6)), Opacus' rule with a
// safety margin. Multiplying an example's gradient by it bounds its L2 norm by C: the
// sensitivity of the summed gradient to adding or removing one example (ARCHITECTURE
// invariant 1: clipped once, jointly over all trainable tensors). The margin makes the bound
// hold after rounding: norms are float64 sums of float32 squares (relative error < 1e-12), the
// factor and the scaled coordinates are rounded to float32 (relative error <= 2^-24 each), so the
// scaled gradient's norm is at most C (1 - 1e-5)(1 + 2^-23) < C. Where gradients are
// materialised (reference, instantiate, partial examples, view groups) this is unconditional.
// The BK strategy's ghost norms come from float32 Gram products: the margin covers their
// rounding (relative error ~1e-7 typical), not a pathological cancellation (docs/privacy.md).
inline constexpr double kClipSafety = 1e-5;
torch::Tensor clip_factors(const torch::Tensor& per_example_norms, double max_grad_norm);

// N(0, std^2) noise for every coordinate of `like` (its shape, device and dtype), drawn from the
// secret stream of `step` that no data-dependent code touches (invariants 2 and 6;
// secure_noise.hpp). Drawn on the CPU, so CPU and CUDA runs add the same noise.
torch::Tensor gaussian_noise(const torch::Tensor& like, double std, const RunSecret& secret, int64_t step);

struct NoiseSpec {
  double noise_multiplier = 0.0;  // sigma
  double max_grad_norm = 1.0;     // C
  double expected_lot_size = 1.0; // q * N
  const RunSecret* secret = nullptr;        // the mechanism's coins; required when sigma > 0
  NoisePrefetcher* prefetcher = nullptr;    // optional (rank 0): noise drawn ahead, same values
};

// Turns this rank's sum of clipped per-example gradients into the privatised update of `step`:
// rank 0 alone adds N(0, sigma^2 C^2) before the all-reduce (so the noise enters exactly once
// whatever the number of ranks or micro-batches, empty lots included: invariant 2), the sum is
// all-reduced, and the result is divided by the expected lot size q*N, never by the realised
// one, whose value would itself leak membership (invariant 3). Called once per step.
void privatize_in_place(torch::Tensor& flat_clipped_sum, const NoiseSpec& spec, int64_t step,
                        dist::TensorComm& comm);

}  // namespace vardp::dp
