// Comparing tensors in tests.
#pragma once

#include <torch/torch.h>

#include <algorithm>

namespace vardp::test {

// ||got - want|| / ||want|| in float64 (Frobenius norms over all elements).
inline double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  const torch::Tensor w = want.to(torch::kDouble);
  const double diff = (got.to(torch::kDouble) - w).norm().item<double>();
  return diff / std::max(w.norm().item<double>(), 1e-300);
}

}  // namespace vardp::test
