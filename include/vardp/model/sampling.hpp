// Class-conditional autoregressive sampling of VAR (official VAR.autoregressive_infer_cfg and
// models/helpers.py): scale by scale with a KV cache, classifier-free guidance, top-k / top-p
// filtering, multinomial draws from one seeded generator, optional gumbel smoothing.
#pragma once
#include <torch/torch.h>

#include <optional>
#include <vector>

#include "vardp/model/var.hpp"
#include "vardp/model/vqvae.hpp"

namespace vardp::model {

struct SampleOptions {
  double cfg = 1.5;  // guidance at the last scale; t = cfg * si / (SN - 1) at scale si
  int64_t top_k = 0;     // 0: off; keeps every logit >= the k-th largest (ties kept); clamped to V
  double top_p = 0.0;    // 0: off
  std::optional<uint64_t> seed;  // the official g_seed; none: the global generator
  bool more_smooth = false;      // gumbel-softmax smoothing (visualisation only, not for FID)
  bool record_logits = false;    // keep the raw (2B, l, V) logits of every scale
  bool record_kept = false;      // keep the number of tokens surviving top-k/top-p
};

struct SampleResult {
  torch::Tensor images;                  // (B, 3, H, W) in [0, 1]
  torch::Tensor labels;                  // (B) int64
  std::vector<torch::Tensor> tokens;     // per scale (B, pn*pn) int64
  std::vector<torch::Tensor> kept;       // per scale (B, pn*pn) int32 (record_kept)
  std::vector<torch::Tensor> logits_raw; // per scale (2B, pn*pn, V): rows [:B] conditional
  torch::Tensor f_hat;                   // (B, Cvae, pn_last, pn_last)
};

// Filters logits (B, l, V) in place to -inf outside the top-k / top-p sets; returns the number
// of finite entries per token (B, l) int32.
torch::Tensor filter_top_k_top_p_(torch::Tensor& logits_BlV, int64_t top_k, double top_p);
// filter_top_k_top_p_, then one multinomial draw per token from softmax: (B, l) int64.
torch::Tensor sample_with_top_k_top_p_(torch::Tensor& logits_BlV, int64_t top_k, double top_p,
                                       c10::optional<at::Generator> gen,
                                       torch::Tensor* kept = nullptr);
// softmax((logits + g) / tau) with g = -log(Exp(1)) drawn from `gen`.
torch::Tensor gumbel_softmax_with_rng(const torch::Tensor& logits, double tau, int64_t dim,
                                      c10::optional<at::Generator> gen);

// Samples B images. labels: (B) class ids (a negative id means the null class); undefined:
// drawn uniformly from the generator as the official code does.
SampleResult autoregressive_infer_cfg(VARImpl& var, VQVAEImpl& vae, int64_t B,
                                      torch::Tensor labels, const SampleOptions& opt);

}  // namespace vardp::model
