// The VAR transformer (official models/var.py): next-scale prediction over the multi-scale token
// pyramid of the VQ-VAE, conditioned on a class label through AdaLN.
#pragma once
#include <torch/torch.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vardp/model/grad_hooks.hpp"
#include "vardp/model/linear.hpp"
#include "vardp/model/var_blocks.hpp"

namespace vardp::model {

struct VARConfig {
  int64_t vocab_size = 4096;  // V (from the VQ-VAE)
  int64_t Cvae = 32;          // VQ-VAE latent channels
  int64_t num_classes = 1000;
  int64_t depth = 16;
  int64_t embed_dim = 1024;
  int64_t num_heads = 16;
  double mlp_ratio = 4.0;
  double drop_rate = 0.0;
  double attn_drop_rate = 0.0;
  double drop_path_rate = 0.0;
  double norm_eps = 1e-6;
  bool shared_aln = false;
  // Label-dropout rate the model was trained with (classifier-free guidance). Stored for the
  // trainer; forward() drops labels only when ForwardOptions asks (see there).
  double cond_drop_rate = 0.1;
  bool attn_l2_norm = true;
  std::vector<int64_t> patch_nums{1, 2, 3, 4, 5, 6, 8, 10, 13, 16};

  // The official build_vae_var() sizes: width 64*depth, heads = depth, drop-path 0.1*depth/24,
  // attn_l2_norm on.
  static VARConfig for_depth(int64_t depth, int64_t num_classes = 1000, int64_t vocab_size = 4096,
                             int64_t Cvae = 32,
                             std::vector<int64_t> patch_nums = {1, 2, 3, 4, 5, 6, 8, 10, 13, 16});

  int64_t L() const;        // tokens over all scales
  int64_t first_l() const;  // tokens of the first scale
  int64_t num_scales() const { return static_cast<int64_t>(patch_nums.size()); }
  std::vector<std::pair<int64_t, int64_t>> begin_ends() const;
  int64_t ffn_hidden() const;
  void validate() const;  // throws vardp::Error naming the bad field
  std::string describe() const;
};

// Per-call options of the teacher-forcing forward.
struct ForwardOptions {
  // Label dropout (classifier-free-guidance training): each label is replaced by the null class
  // with this probability. The OFFICIAL code drops labels in VAR.forward whenever its
  // cond_drop_rate > 0 (default 0.1) — in eval mode too, so its validation losses and any
  // per-example scores it computes are taken on partly unconditional inputs. vardp drops only
  // when a rate (or a mask) is passed here; the default forward is fully conditional.
  double cond_drop_rate = 0.0;
  // Explicit dropout decisions (bool, (B)); overrides cond_drop_rate. Lets the trainer draw them
  // from counter-based streams keyed by example (ARCHITECTURE invariant 6).
  torch::Tensor label_drop_mask;
  // Drop-path (stochastic depth) keep decisions per block and example ((depth, B), 1 = keep),
  // used only in train() mode with drop_path_rate > 0. Undefined in train() mode: drawn from
  // `generator` (or the global one) with the official per-block rates.
  torch::Tensor drop_path_keep;
  c10::optional<at::Generator> generator;
};

class VARImpl : public torch::nn::Module, public Observed {
 public:
  explicit VARImpl(VARConfig cfg);
  const VARConfig& config() const { return cfg_; }

  // Teacher-forcing forward: labels (B) int64 in [0, num_classes] (num_classes = null class),
  // x_BLCv_wo_first_l (B, L - first_l, Cvae) from VectorQuantizer2::idxBl_to_var_input.
  // Returns logits (B, L, V) in float32.
  torch::Tensor forward(const torch::Tensor& labels, const torch::Tensor& x_BLCv_wo_first_l,
                        const ForwardOptions& opt = {});

  // Conditioning: class embedding of labels (B, C); the hook site of class_emb.weight.
  torch::Tensor class_embedding(const torch::Tensor& labels);
  // lvl_embed(lvl_1L) + pos_1LC for tokens [0, ed): (1, ed, C), or (B, ed, C) with replicas.
  torch::Tensor level_position(int64_t ed, int64_t batch);
  // pos_start broadcast to (B, first_l, C).
  torch::Tensor start_position(int64_t batch);
  // cond_BD or, with shared_aln, shared_ada_lin(cond_BD) (B, 1, 6, C).
  torch::Tensor block_condition(const torch::Tensor& cond_BD);
  // head(head_nm(h, cond_BD)) in float32.
  torch::Tensor get_logits(const torch::Tensor& h, const torch::Tensor& cond_BD);

  // A new class embedding for `num_classes` downstream classes (+1 null row), drawn as the
  // official init (truncated normal, std sqrt(1/(3C)); the +-2 bounds are never reached at that
  // std) from `generator`, on the device and dtype of the old one. Used when adapting a
  // pre-trained model to a new dataset.
  void reset_classes(int64_t num_classes, at::Generator generator);

  // Enables/disables the KV cache of every block (autoregressive inference).
  void kv_caching(bool enable);

  // The official VAR.init_weights (models built from scratch; checkpoints overwrite it).
  void init_weights(double init_adaln = 0.5, double init_adaln_gamma = 1e-5,
                    double init_head = 0.02, double init_std = -1);

  // Per-block drop-path rates: linspace(0, drop_path_rate, depth) in float32 as the official.
  const std::vector<double>& drop_path_rates() const { return dpr_; }

  Linear word_embed{nullptr};
  torch::nn::Embedding class_emb{nullptr};
  torch::Tensor pos_start;  // (1, first_l, C)
  torch::Tensor pos_1LC;    // (1, L, C)
  torch::nn::Embedding lvl_embed{nullptr};
  torch::nn::Sequential shared_ada_lin{nullptr};  // (SiLU, Linear(D, 6C)) with shared_aln
  Linear shared_ada_lin_linear{nullptr};
  std::vector<AdaLNSelfAttn> blocks;
  AdaLNBeforeHead head_nm{nullptr};
  Linear head{nullptr};
  torch::Tensor lvl_1L;                 // buffer (1, L) int64: scale index of each token
  torch::Tensor attn_bias_for_masking;  // buffer (1, 1, L, L): 0 where attending is allowed

 private:
  VARConfig cfg_;
  std::vector<double> dpr_;
};
TORCH_MODULE(VAR);

// Cross-entropy of the teacher-forced logits (natural log). Call it qualified
// (model::cross_entropy_loss): argument-dependent lookup also finds at::cross_entropy_loss.
struct TokenLoss {
  torch::Tensor per_token;    // (B, L)
  torch::Tensor per_example;  // (B): mean over the L tokens (the official loss weight 1/L)
  torch::Tensor mean;         // scalar: mean over examples, the official training loss
};
TokenLoss cross_entropy_loss(const torch::Tensor& logits_BLV, const torch::Tensor& targets_BL,
                             double label_smoothing = 0.0);

// Analytic FLOPs of one teacher-forcing forward of `batch` examples (multiply-add = 2 FLOPs):
// every linear layer, the attention score and value products over the full L x L mask.
// A training step (forward + backward) costs about three times this.
double forward_flops(const VARConfig& cfg, int64_t batch);

// Number of elements of all parameters (buffers excluded).
int64_t count_parameters(const torch::nn::Module& m);

}  // namespace vardp::model
