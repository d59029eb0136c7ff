// The one place where data meets LibTorch: a Batch as tensors.
#pragma once
#include <torch/types.h>

#include "vardp/data/reader.hpp"

namespace vardp::data {

// (n, 3, R, R) float32 in [-1, 1]; a copy, so the Batch may be released.
torch::Tensor batch_images(const Batch& batch);
// (n,) int64 labels.
torch::Tensor batch_labels(const Batch& batch);

}  // namespace vardp::data
