// The Gaussian mechanism of one DP-SGD step, applied to the sum of clipped per-example
// gradients (flattened over all trainable tensors).
#pragma once
#include <torch/torch.h>

#include <cstdint>

#include "vardp/dist/tensor_comm.hpp"

namespace vardp::dp {

// Opacus' clip factor per example: min(1, C / (norm + 1e-6)). Multiplying an example's gradient
// by it bounds its L2 norm by C: the sensitivity of the summed gradient to adding or removing
// one example (ARCHITECTURE invariant 1: clipped once, jointly over all trainable tensors).
torch::Tensor clip_factors(const torch::Tensor& per_example_norms, double max_grad_norm);

// Flat L2 norm of each example's gradient over several tensors with a leading batch dimension.
torch::Tensor per_example_norms(const std::vector<torch::Tensor>& per_example_grads);

// sum_b clip(g_b): per_example_grads are [B, ...] tensors (all tensors of one example form one
// gradient); returns the clipped sums in the same shapes without the batch dimension.
std::vector<torch::Tensor> clipped_sum(const std::vector<torch::Tensor>& per_example_grads, double max_grad_norm,
                                       torch::Tensor* norms_out = nullptr);

// N(0, std^2) noise for every coordinate of `like`, drawn from the dedicated stream
// (seed, dp_noise, step) that no data-dependent code touches (invariant 2).
torch::Tensor gaussian_noise(const torch::Tensor& like, double std, uint64_t seed, int64_t step);

struct NoiseSpec {
  double noise_multiplier = 0.0;  // sigma
  double max_grad_norm = 1.0;     // C
  double expected_lot_size = 1.0; // q * N
  uint64_t seed = 0;
};

// Turns this rank's sum of clipped per-example gradients into the privatised update of `step`:
// rank 0 alone adds N(0, sigma^2 C^2) before the all-reduce (so the noise enters exactly once
// whatever the number of ranks or micro-batches, empty lots included: invariant 2), the sum is
// all-reduced, and the result is divided by the expected lot size q*N, never by the realised
// one, whose value would itself leak membership (invariant 3). Called once per step.
void privatize_in_place(torch::Tensor& flat_clipped_sum, const NoiseSpec& spec, int64_t step,
                        dist::TensorComm& comm);

}  // namespace vardp::dp
