#include <torch/torch.h>

#include "vardp/util/build_info.hpp"

namespace vardp {
std::string torch_description() {
  std::string s = "LibTorch " + std::to_string(TORCH_VERSION_MAJOR) + "." +
                  std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH);
  s += torch::cuda::is_available() ? " (CUDA available)" : " (CPU)";
  return s;
}
}  // namespace vardp
