// A LibTorch module's tensors as a state dict, and a strict load of a state dict into a module.
// One place for what every model kind (VAR, VQ-VAE, Inception, classifier) needs.
#pragma once
#include <torch/nn/module.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "vardp/io/state_dict.hpp"

namespace vardp::io {

// Names and shapes of every tensor of the module's state dict: parameters, then buffers (the
// order LibTorch and PyTorch list them in).
std::vector<std::pair<std::string, std::vector<int64_t>>> module_shapes(const torch::nn::Module& m);

// The module's parameters and buffers, detached, as contiguous CPU tensors (ready to save; a
// tensor already contiguous on the CPU shares its storage with the module).
StateDict state_dict_of(const torch::nn::Module& m);

// Copies `sd` into the module's parameters and buffers (floating values converted to the
// module's dtype) after checking that keys and shapes match exactly and that no floating tensor
// meets an integer one. Otherwise throws one vardp::Error prefixed by `what` naming every
// offending key, before anything is copied.
void load_module_state(torch::nn::Module& m, const StateDict& sd, const std::string& what);

}  // namespace vardp::io
