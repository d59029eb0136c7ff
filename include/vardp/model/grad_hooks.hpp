// The one seam between the models and a per-example-gradient engine (DP-SGD, issue 4).
//
// A model has no observer by default and then runs at full speed: every hook site is a single
// null-pointer test. An engine that needs per-example gradients installs a GradObserver with
// attach_grad_observer(model, &obs) for the duration of a training forward/backward and sees:
//
//  * on_linear(layer, input, output) after EVERY linear layer of the model (all of them are
//    vardp::model::LinearImpl, whose trainable tensors are exactly `weight` [out, in] and, where
//    present, `bias` [out]). `input` is (..., in) and `output` (..., out) as used in the graph;
//    the engine may call output.register_hook(...) to receive dLoss/dOutput in the backward pass.
//    With input a and output-gradient g of one example, its gradient is
//    dW = sum_tokens g^T a and db = sum_tokens g (mat_qkv has no `bias`: its q/v biases are
//    the small parameters below).
//
//  * on_param(name, param, batch) at the one place where each small broadcast parameter enters the
//    graph (`pos_start`, `pos_1LC`, `lvl_embed.weight`, `class_emb.weight`,
//    `blocks.N.attn.q_bias`, `blocks.N.attn.v_bias`, `blocks.N.attn.scale_mul_1H11`,
//    `blocks.N.ada_gss`; names are state-dict keys). The observer returns the tensor the model
//    uses there: either `param` itself, or a per-example replica of shape (batch, *param.shape)
//    whose slice b is used for example b only (typically
//    param.detach().unsqueeze(0).repeat(...).requires_grad_()); after backward, replica.grad[b]
//    is example b's gradient of that parameter. The model handles both forms at every site.
//
// Every module that consults the observer derives from Observed; attach_grad_observer() walks a
// module tree, sets the observer, and gives each Observed module its state-dict path.
// Observers are meant for training forwards; sampling (KV cache, doubled CFG batch) runs without.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace torch::nn {
class Module;
}

namespace vardp::model {

class LinearImpl;

class GradObserver {
 public:
  virtual ~GradObserver() = default;
  // After each linear layer's forward. `layer.path()` is its state-dict prefix
  // ("blocks.0.attn.mat_qkv"); output includes the bias.
  virtual void on_linear(const LinearImpl& layer, const at::Tensor& input,
                         const at::Tensor& output) = 0;
  // Where a small parameter is used; returns `param` or a (batch, *param.shape) replica.
  virtual at::Tensor on_param(const std::string& name, const at::Tensor& param, int64_t batch) {
    return param;
  }
};

// Installs `observer` (nullptr removes it) on every Observed module under `root` (root
// included) and records their state-dict paths, prefixed with `prefix` when given.
void attach_grad_observer(torch::nn::Module& root, GradObserver* observer,
                          const std::string& prefix = "");

// Mixin for modules with hook sites.
class Observed {
 public:
  GradObserver* observer() const { return observer_; }
  // State-dict prefix of the module ("blocks.0.attn"), set by attach_grad_observer.
  const std::string& path() const { return path_; }
  // Full state-dict key of one of this module's tensors.
  std::string key(const std::string& tensor_name) const {
    return path_.empty() ? tensor_name : path_ + "." + tensor_name;
  }

 protected:
  // The small-parameter hook site: `param` unless an observer replaces it.
  at::Tensor use_param(const char* name, const at::Tensor& param, int64_t batch) const {
    return observer_ ? observer_->on_param(key(name), param, batch) : param;
  }
  // True when `used` is a per-example replica of `param` (one leading batch dimension more).
  static bool is_replica(const at::Tensor& used, const at::Tensor& param) {
    return used.dim() == param.dim() + 1;
  }

 private:
  friend void attach_grad_observer(torch::nn::Module& root, GradObserver* observer,
                                   const std::string& prefix);
  GradObserver* observer_ = nullptr;
  std::string path_;
};

// Installs an observer for one scope and removes it again, also when an exception leaves it.
class ScopedGradObserver {
 public:
  ScopedGradObserver(torch::nn::Module& root, GradObserver* observer) : root_(root) {
    attach_grad_observer(root_, observer);
  }
  ~ScopedGradObserver() { attach_grad_observer(root_, nullptr); }
  ScopedGradObserver(const ScopedGradObserver&) = delete;
  ScopedGradObserver& operator=(const ScopedGradObserver&) = delete;

 private:
  torch::nn::Module& root_;
};

}  // namespace vardp::model
