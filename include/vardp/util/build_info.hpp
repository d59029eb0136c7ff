#pragma once
#include <string>

namespace vardp {
// Filled in by CMake at configure time (src/util/build_info.cpp.in).
const std::string& version_string();
const std::string& git_sha();
// "LibTorch 1.13.1 (CPU)" etc.
std::string torch_description();
}  // namespace vardp
