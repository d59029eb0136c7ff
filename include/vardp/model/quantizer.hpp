// The multi-scale residual vector quantiser of VAR's VQ-VAE (official `VectorQuantizer2`):
// token maps from 1x1 up to the full latent resolution, each scale quantising what the coarser
// scales left over, upsampled (bicubic) and refined by a Phi convolution.
#pragma once
#include <torch/torch.h>

#include <vector>

namespace vardp::model {

// Phi(h) = (1 - r) h + r conv3x3(h); parameters named like nn.Conv2d ("weight", "bias").
class PhiImpl : public torch::nn::Cloneable<PhiImpl> {
 public:
  PhiImpl(int64_t channels, double resi_ratio);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& h);

  torch::Tensor weight;
  torch::Tensor bias;

 private:
  int64_t channels_;
  double resi_ratio_;
};
TORCH_MODULE(Phi);

// Phi sharing of the official code:
//   share_quant_resi == 0: one Phi per scale (PhiNonShared, keys quant_resi.<k>.*),
//   share_quant_resi == 1: one Phi for all scales (PhiShared, keys quant_resi.qresi.*),
//   share_quant_resi >= 2: K Phis spread over the scales (PhiPartiallyShared,
//                          keys quant_resi.qresi_ls.<k>.*).
// With |quant_resi| <= 1e-6 every Phi is the identity (no parameters).
enum class PhiSharing { non_shared, shared, partially_shared };

// Tick positions of K Phis: numpy.linspace(1/3/K, 1-1/3/K, K) for K == 4, else
// numpy.linspace(1/2/K, 1-1/2/K, K), reproduced in float64 exactly as numpy computes them.
std::vector<double> phi_ticks(int64_t K);
// Index of the Phi used at scale si of SN: argmin_k |tick_k - si/(SN-1)| in float64, first
// index on ties (numpy.argmin). SN == 1 (where the official code divides by zero) uses 0.
int64_t phi_index(int64_t K, int64_t si, int64_t SN);

class PhiSetImpl : public torch::nn::Module {
 public:
  PhiSetImpl(PhiSharing sharing, int64_t count, int64_t channels, double quant_resi);
  // Applies the Phi of scale si out of SN.
  torch::Tensor apply(const torch::Tensor& h, int64_t si, int64_t SN) const;
  int64_t index(int64_t si, int64_t SN) const;
  PhiSharing sharing() const { return sharing_; }
  int64_t count() const { return static_cast<int64_t>(phis_.size()); }

 private:
  PhiSharing sharing_;
  std::vector<Phi> phis_;  // empty entries when Phi is the identity
};
TORCH_MODULE(PhiSet);

struct QuantizerConfig {
  int64_t vocab_size = 4096;
  int64_t Cvae = 32;
  bool using_znorm = false;
  double beta = 0.25;
  int64_t default_qresi_counts = 0;  // non-shared: number of Phis (0: one per scale)
  std::vector<int64_t> v_patch_nums{1, 2, 3, 4, 5, 6, 8, 10, 13, 16};
  double quant_resi = 0.5;
  int64_t share_quant_resi = 4;
};

// Result of the VQ-VAE-training forward.
struct QuantizerOutput {
  torch::Tensor f_hat;    // straight-through estimate (value f_hat, gradient to f)
  torch::Tensor vq_loss;  // mean over scales of beta*|sg(f_hat)-f|^2 + |f_hat - sg(f)|^2
  torch::Tensor vocab_hits;  // (V) codes chosen, summed over scales
};

class VectorQuantizer2Impl : public torch::nn::Module {
 public:
  explicit VectorQuantizer2Impl(QuantizerConfig cfg);
  const QuantizerConfig& config() const { return cfg_; }
  int64_t num_scales() const { return static_cast<int64_t>(cfg_.v_patch_nums.size()); }

  // VQ-VAE training forward (no EMA bookkeeping across ranks).
  QuantizerOutput forward(const torch::Tensor& f_BChw);

  // Token ids per scale (each (B, ph*pw), row-major over (h, w)) or, with to_fhat, the
  // accumulated f_hat after each scale. patch_nums: empty = the configured ones.
  std::vector<torch::Tensor> f_to_idxBl_or_fhat(const torch::Tensor& f_BChw, bool to_fhat,
                                                std::vector<int64_t> patch_nums = {});
  // f_hat from per-scale code embeddings (B, Cvae, pn, pn): every map upsampled to the largest
  // scale (all_to_max_scale) or the official experimental coarse-to-fine path; all f_hats or the last.
  std::vector<torch::Tensor> embed_to_fhat(const std::vector<torch::Tensor>& ms_h_BChw,
                                           bool all_to_max_scale, bool last_one);
  // Teacher-forcing input of VAR: (B, L - first_l, Cvae), the area-downsampled partial f_hat
  // after each scale but the last.
  torch::Tensor idxBl_to_var_input(const std::vector<torch::Tensor>& gt_ms_idx_Bl);
  // One autoregressive step: adds scale si's contribution h_BChw (B, Cvae, pn, pn) to f_hat
  // (in place) and returns the next scale's input map (area-downsampled f_hat), or f_hat itself
  // after the last scale.
  torch::Tensor get_next_autoregressive_input(int64_t si, int64_t SN, torch::Tensor& f_hat,
                                              const torch::Tensor& h_BChw);
  // Nearest-code ids of z_NC (N, Cvae): squared-distance arg-min as the official code computes
  // it (or cosine arg-max with using_znorm).
  torch::Tensor nearest_code(const torch::Tensor& z_NC) const;

  torch::nn::Embedding embedding{nullptr};
  PhiSet quant_resi{nullptr};
  torch::Tensor ema_vocab_hit_SV;  // persistent buffer (SN, V); unused at inference

 private:
  QuantizerConfig cfg_;
};
TORCH_MODULE(VectorQuantizer2);

}  // namespace vardp::model
