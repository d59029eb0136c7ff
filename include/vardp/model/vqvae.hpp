// VAR's multi-scale VQ-VAE (official models/vqvae.py + basic_vae.py): a taming/LDM-style
// convolutional encoder and decoder around the multi-scale residual quantiser. Module names
// equal the official attribute names, so the published state dicts load key for key.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "vardp/model/quantizer.hpp"

namespace vardp::model {

struct VQVAEConfig {
  int64_t vocab_size = 4096;
  int64_t z_channels = 32;  // Cvae
  int64_t ch = 160;
  std::vector<int64_t> ch_mult{1, 1, 2, 2, 4};  // the official VQVAE always uses these
  int64_t num_res_blocks = 2;
  bool using_sa = true;      // attention blocks at the lowest resolution
  bool using_mid_sa = true;  // attention block in the middle
  double dropout = 0.0;
  int64_t in_channels = 3;
  int64_t norm_groups = 32;  // GroupNorm(32, C, eps=1e-6) in the official code
  double norm_eps = 1e-6;
  double beta = 0.25;
  bool using_znorm = false;
  int64_t quant_conv_ks = 3;
  double quant_resi = 0.5;
  int64_t share_quant_resi = 4;
  int64_t default_qresi_counts = 0;
  std::vector<int64_t> v_patch_nums{1, 2, 3, 4, 5, 6, 8, 10, 13, 16};
  // As the official test_mode: eval() and every parameter frozen (the VQ-VAE is a fixed,
  // public tokenizer in VAR training). Off only to train a VQ-VAE.
  bool test_mode = true;

  int64_t downsample() const { return int64_t{1} << (ch_mult.size() - 1); }
  // Image side the token pyramid covers: last patch number x downsample.
  int64_t image_size() const { return v_patch_nums.back() * downsample(); }
  QuantizerConfig quantizer() const;
  void validate() const;  // throws vardp::Error naming the bad field
  std::string describe() const;
};

class ResnetBlockImpl : public torch::nn::Module {
 public:
  ResnetBlockImpl(int64_t in_channels, int64_t out_channels, double dropout, int64_t groups,
                  double eps);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, nin_shortcut{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(ResnetBlock);

// Single-head spatial self-attention with 1x1-conv q/k/v.
class AttnBlockImpl : public torch::nn::Module {
 public:
  AttnBlockImpl(int64_t channels, int64_t groups, double eps);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d qkv{nullptr}, proj_out{nullptr};

 private:
  int64_t C_;
  double w_ratio_;
};
TORCH_MODULE(AttnBlock);

// Zero-pad right/bottom by one, then a stride-2 3x3 conv.
class Downsample2xImpl : public torch::nn::Module {
 public:
  explicit Downsample2xImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Downsample2x);

// Nearest 2x upsampling, then a 3x3 conv.
class Upsample2xImpl : public torch::nn::Module {
 public:
  explicit Upsample2xImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample2x);

// One resolution level: `block`, `attn` and `downsample` / `upsample` as in the official code.
class LevelImpl : public torch::nn::Module {
 public:
  LevelImpl();  // registers the (possibly empty) `block` and `attn` lists
  void add_block(ResnetBlock b);
  void add_attn(AttnBlock a);
  void set_downsample(Downsample2x d);
  void set_upsample(Upsample2x u);

  std::vector<ResnetBlock> blocks;
  std::vector<AttnBlock> attns;
  Downsample2x downsample{nullptr};
  Upsample2x upsample{nullptr};

 private:
  torch::nn::ModuleList block_list_, attn_list_;
};
TORCH_MODULE(Level);

// block_1 -> attn_1 (optional) -> block_2.
class MidImpl : public torch::nn::Module {
 public:
  MidImpl(int64_t channels, bool using_sa, double dropout, int64_t groups, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  ResnetBlock block_1{nullptr}, block_2{nullptr};
  AttnBlock attn_1{nullptr};
};
TORCH_MODULE(Mid);

class EncoderImpl : public torch::nn::Module {
 public:
  explicit EncoderImpl(const VQVAEConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  std::vector<Level> down;
  Mid mid{nullptr};
  torch::nn::GroupNorm norm_out{nullptr};
};
TORCH_MODULE(Encoder);

class DecoderImpl : public torch::nn::Module {
 public:
  explicit DecoderImpl(const VQVAEConfig& cfg);
  torch::Tensor forward(const torch::Tensor& z);

  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  Mid mid{nullptr};
  std::vector<Level> up;  // up[i] is resolution level i (0 = full resolution)
  torch::nn::GroupNorm norm_out{nullptr};
};
TORCH_MODULE(Decoder);

class VQVAEImpl : public torch::nn::Module {
 public:
  explicit VQVAEImpl(VQVAEConfig cfg);
  const VQVAEConfig& config() const { return cfg_; }

  // VQ-VAE training forward: (reconstruction, vq_loss).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& img);

  // f = quant_conv(encoder(img)), img (B, 3, H, W) in [-1, 1].
  torch::Tensor encode_f(const torch::Tensor& img);
  // Token ids per scale, each (B, pn*pn).
  std::vector<torch::Tensor> img_to_idxBl(const torch::Tensor& img);
  // decoder(post_quant_conv(f_hat)) clamped to [-1, 1].
  torch::Tensor fhat_to_img(const torch::Tensor& f_hat);
  // Token ids per scale -> f_hat at the largest scale.
  torch::Tensor idxBl_to_fhat(const std::vector<torch::Tensor>& ms_idx_Bl);
  // Token ids per scale -> image in [-1, 1] (the last scale's f_hat decoded).
  torch::Tensor idxBl_to_img(const std::vector<torch::Tensor>& ms_idx_Bl);
  // Images reconstructed from the partial f_hat after each scale (or only the last).
  std::vector<torch::Tensor> img_to_reconstructed_img(const torch::Tensor& img, bool last_one);

  Encoder encoder{nullptr};
  Decoder decoder{nullptr};
  VectorQuantizer2 quantize{nullptr};
  torch::nn::Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};

 private:
  VQVAEConfig cfg_;
};
TORCH_MODULE(VQVAE);

}  // namespace vardp::model
