// The transformer blocks of VAR (official models/basic_var.py): FFN, SelfAttention with
// L2-normalised q/k, AdaLNSelfAttn, AdaLNBeforeHead. Names equal the official attributes.
#pragma once
#include <torch/torch.h>

#include "vardp/model/grad_hooks.hpp"
#include "vardp/model/linear.hpp"

namespace vardp::model {

// Per-call randomness of a block in training: a drop-path keep factor per example (0 or
// 1/keep_prob, shape (B)); undefined = no drop-path.
struct BlockNoise {
  torch::Tensor drop_path_scale;
};

class FFNImpl : public torch::nn::Module {
 public:
  FFNImpl(int64_t in_features, int64_t hidden_features, double drop);
  torch::Tensor forward(const torch::Tensor& x);  // fc2(gelu_tanh(fc1(x))), then dropout

  Linear fc1{nullptr}, fc2{nullptr};

 private:
  double drop_;
};
TORCH_MODULE(FFN);

class SelfAttentionImpl : public torch::nn::Module, public Observed {
 public:
  SelfAttentionImpl(int64_t block_idx, int64_t embed_dim, int64_t num_heads, double attn_drop,
                    double proj_drop, bool attn_l2_norm);
  // x (B, L, C); attn_bias (1, 1, L, L) additive mask, or undefined (KV-cache inference).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& attn_bias);

  // KV cache for autoregressive inference: keys/values of earlier scales are kept and
  // prepended; enabling or disabling clears it.
  void kv_caching(bool enable);

  int64_t num_heads() const { return num_heads_; }
  int64_t head_dim() const { return head_dim_; }
  bool attn_l2_norm() const { return attn_l2_norm_; }

  torch::Tensor scale_mul_1H11;  // (1, H, 1, 1), log of the q scale, clamped at log(100)
  torch::Tensor q_bias, v_bias;  // (C)
  torch::Tensor zero_k_bias;     // buffer (C), zeros
  Linear mat_qkv{nullptr}, proj{nullptr};

 private:
  int64_t block_idx_, num_heads_, head_dim_;
  bool attn_l2_norm_;
  double scale_;
  double max_scale_mul_;
  double attn_drop_, proj_drop_;
  bool caching_ = false;
  torch::Tensor cached_k_, cached_v_;
};
TORCH_MODULE(SelfAttention);

class AdaLNSelfAttnImpl : public torch::nn::Module, public Observed {
 public:
  AdaLNSelfAttnImpl(int64_t block_idx, int64_t embed_dim, int64_t cond_dim, bool shared_aln,
                    double norm_eps, int64_t num_heads, double mlp_ratio, double drop,
                    double attn_drop, double drop_path, bool attn_l2_norm);
  // cond_BD: (B, D) class condition, or with shared_aln the shared projection (B, 1, 6, C).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cond_BD,
                        const torch::Tensor& attn_bias, const BlockNoise& noise = {});

  double drop_path_rate() const { return drop_path_; }

  SelfAttention attn{nullptr};
  FFN ffn{nullptr};
  torch::nn::Sequential ada_lin{nullptr};  // (SiLU, Linear(D, 6C)); absent with shared_aln
  Linear ada_lin_linear{nullptr};          // == ada_lin[1]
  torch::Tensor ada_gss;                   // (1, 1, 6, C) with shared_aln

 private:
  int64_t C_;
  bool shared_aln_;
  double norm_eps_;
  double drop_path_;
};
TORCH_MODULE(AdaLNSelfAttn);

// LayerNorm (no affine) modulated by scale/shift from the class condition, before the head.
class AdaLNBeforeHeadImpl : public torch::nn::Module {
 public:
  AdaLNBeforeHeadImpl(int64_t C, int64_t D, double norm_eps);
  torch::Tensor forward(const torch::Tensor& x_BLC, const torch::Tensor& cond_BD);

  torch::nn::Sequential ada_lin{nullptr};  // (SiLU, Linear(D, 2C))
  Linear ada_lin_linear{nullptr};

 private:
  int64_t C_;
  double norm_eps_;
};
TORCH_MODULE(AdaLNBeforeHead);

// LayerNorm over the last dimension without affine parameters (VAR's ln_wo_grad).
torch::Tensor layer_norm_wo_affine(const torch::Tensor& x, double eps);

}  // namespace vardp::model
