// The one linear layer of the models. Every nn.Linear of the official VAR becomes a LinearImpl,
// so a per-example-gradient engine sees all of them through one hook (grad_hooks.hpp) and
// state-dict keys stay "<path>.weight" / "<path>.bias".
//
// LoRA lives here too, so that it applies wherever the layer is used: y = x W^T + b +
// (alpha/r) * B(A(dropout(x))), with the factors as two bias-free child layers "lora_A" (r, in)
// and "lora_B" (out, r). Because mat_qkv goes through forward_with_bias of this same class, LoRA
// on mat_qkv really changes q/k/v (the official code calls F.linear on mat_qkv.weight directly,
// which would bypass a wrapped layer). The per-example-gradient engine sees lora_A and lora_B as
// ordinary linear layers through their own hooks.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>

#include "vardp/model/grad_hooks.hpp"

namespace vardp::model {

class LinearImpl : public torch::nn::Cloneable<LinearImpl>, public Observed {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool with_bias = true);

  // Registers `weight` (out, in) and, with a bias, `bias` (out); PyTorch's nn.Linear init.
  void reset() override;
  void reset_parameters();

  // y = x W^T + b.
  torch::Tensor forward(const torch::Tensor& x);
  // y = x W^T + bias with an explicit bias instead of the module's own: shape (out) or a
  // per-example (B, out) for x of shape (B, ..., in). Used by mat_qkv, whose bias is
  // cat(q_bias, zero_k_bias, v_bias) as in the official code.
  torch::Tensor forward_with_bias(const torch::Tensor& x, const torch::Tensor& bias);

  void pretty_print(std::ostream& stream) const override;

  // Adds LoRA factors: A (rank, in) initialised by `init` ("kaiming": PyTorch's Linear init, as
  // PEFT; "gaussian": N(0, 1/rank)) from `generator`, B (out, rank) zero, so the layer's output
  // is unchanged until B trains. Throws if LoRA is already present.
  void enable_lora(int64_t rank, double alpha, double dropout, const std::string& init,
                   at::Generator generator);
  bool has_lora() const { return lora_A != nullptr; }
  double lora_scale() const { return lora_scale_; }
  // W <- W + scale * B A, then removes the factors (vardp merge).
  void merge_lora();

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  bool has_bias() const { return with_bias_; }

  torch::Tensor weight;
  torch::Tensor bias;  // undefined without a bias
  std::shared_ptr<LinearImpl> lora_A, lora_B;  // null without LoRA

 private:
  // Reports (x, base output) to the observer, then adds the LoRA path (whose layers report
  // themselves).
  torch::Tensor notify(const torch::Tensor& x, torch::Tensor y) {
    if (observer()) observer()->on_linear(*this, x, y);
    return lora_A ? y + lora_delta(x) : y;
  }
  torch::Tensor lora_delta(const torch::Tensor& x);

  int64_t in_features_;
  int64_t out_features_;
  bool with_bias_;
  double lora_scale_ = 0.0;
  double lora_dropout_ = 0.0;
};
TORCH_MODULE(Linear);

// In-place truncated normal N(mean, std^2) restricted to [a, b] (absolute bounds), the
// inverse-CDF method of torch.nn.init.trunc_normal_.
void trunc_normal_(torch::Tensor t, double mean, double std, double a = -2.0, double b = 2.0);

}  // namespace vardp::model
