// Optimizers and learning-rate schedules of the training job. Written out (not torch::optim) so
// that their whole state is a few named tensors that checkpoints store and restore bit-exactly,
// and every rank applies the identical update to identical parameters.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vardp/config/config.hpp"
#include "vardp/io/state_dict.hpp"

namespace vardp::train {

// Parameters that get no weight decay, as the official VAR trainer: biases and other 1-D
// tensors, positions, level embeddings, attention scales, AdaLN gammas.
bool no_weight_decay(const std::string& name, const torch::Tensor& p);

class Optimizer {
 public:
  // `params`: (state-dict name, tensor) of the trained tensors, in a fixed order.
  Optimizer(const config::TrainConfig& cfg, std::vector<std::pair<std::string, torch::Tensor>> params);

  // One update with learning rate `lr` from each parameter's .grad (undefined grad = zero).
  // AdamW: PyTorch's torch.optim.AdamW formula (decoupled decay, bias correction, eps outside the
  // square root); SGD: PyTorch's torch.optim.SGD with momentum and coupled weight decay.
  void step(double lr);
  int64_t steps_taken() const { return t_; }

  // State for checkpoints: one state dict per moment ("exp_avg", "exp_avg_sq" for AdamW,
  // "momentum" for SGD), keyed by parameter name; plus the step count.
  std::map<std::string, io::StateDict> state() const;
  void load_state(const std::map<std::string, io::StateDict>& state, int64_t steps_taken);

 private:
  std::string kind_;
  double beta1_, beta2_, eps_ = 1e-8, weight_decay_, momentum_;
  std::vector<std::string> names_;
  std::vector<torch::Tensor> params_;
  std::vector<bool> decay_;
  std::vector<torch::Tensor> m_, v_;  // AdamW moments; SGD: m_ is the momentum buffer
  int64_t t_ = 0;
};

// Learning rate at optimizer step `step` (0-based) of `total`: linear warm-up from 0 over
// warmup_steps, then constant or cosine decay to 0 at `total`.
double learning_rate(const config::TrainConfig& cfg, int64_t step, int64_t total);

}  // namespace vardp::train
