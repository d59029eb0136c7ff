#include "vardp/data/batch_tensor.hpp"

#include <torch/torch.h>

namespace vardp::data {

torch::Tensor batch_images(const Batch& batch) {
  const int64_t n = int64_t(batch.size()), r = batch.image_size;
  if (n == 0) return torch::empty({0, 3, r, r}, torch::kFloat32);
  return torch::from_blob(const_cast<float*>(batch.pixels.data()), {n, 3, r, r}, torch::kFloat32)
      .clone();
}

torch::Tensor batch_labels(const Batch& batch) {
  const int64_t n = int64_t(batch.labels.size());
  if (n == 0) return torch::empty({0}, torch::kInt64);
  return torch::from_blob(const_cast<int64_t*>(batch.labels.data()), {n}, torch::kInt64).clone();
}

}  // namespace vardp::data
