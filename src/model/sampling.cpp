// Autoregressive sampling with KV cache and classifier-free guidance (official
// VAR.autoregressive_infer_cfg, helpers.sample_with_top_k_top_p_, gumbel_softmax_with_rng).
#include "vardp/model/sampling.hpp"

#include <algorithm>
#include <cmath>

#include "vardp/compat/torch_compat.hpp"
#include "vardp/util/error.hpp"

namespace vardp::model {

torch::Tensor filter_top_k_top_p_(torch::Tensor& logits, int64_t top_k, double top_p) {
  VARDP_CHECK(logits.dim() == 3, "top-k/top-p: logits must be (B, l, V), got ", logits.sizes());
  const int64_t V = logits.size(2);
  const double neg_inf = -std::numeric_limits<double>::infinity();
  if (top_k > 0) {
    const int64_t k = std::min(top_k, V);  // the official code would fail for k > V
    // Everything below the k-th largest value goes; values tied with it stay.
    torch::Tensor kth = std::get<0>(logits.topk(k, -1, /*largest=*/true, /*sorted=*/false))
                            .amin(-1, /*keepdim=*/true);
    logits.masked_fill_(logits < kth, neg_inf);
  }
  if (top_p > 0) {
    auto sorted = logits.sort(-1, /*descending=*/false);
    torch::Tensor sorted_logits = std::get<0>(sorted), sorted_idx = std::get<1>(sorted);
    torch::Tensor remove = sorted_logits.softmax(-1).cumsum_(-1) <= (1 - top_p);
    remove.select(-1, V - 1).fill_(false);  // the most likely token always stays
    logits.masked_fill_(remove.scatter(sorted_idx.dim() - 1, sorted_idx, remove), neg_inf);
  }
  return torch::isfinite(logits).sum(-1).to(torch::kInt);
}

torch::Tensor sample_with_top_k_top_p_(torch::Tensor& logits, int64_t top_k, double top_p,
                                       c10::optional<at::Generator> gen, torch::Tensor* kept) {
  const int64_t B = logits.size(0), l = logits.size(1), V = logits.size(2);
  torch::Tensor k = filter_top_k_top_p_(logits, top_k, top_p);
  if (kept) *kept = k;
  return torch::multinomial(logits.softmax(-1).view({-1, V}), 1, /*replacement=*/true, gen)
      .view({B, l});
}

torch::Tensor gumbel_softmax_with_rng(const torch::Tensor& logits, double tau, int64_t dim,
                                      c10::optional<at::Generator> gen) {
  torch::Tensor gumbels = torch::empty_like(logits).exponential_(1.0, gen).log().neg();
  return ((logits + gumbels) / tau).softmax(dim);
}

SampleResult autoregressive_infer_cfg(VARImpl& var, VQVAEImpl& vae, int64_t B,
                                      torch::Tensor labels, const SampleOptions& opt) {
  torch::NoGradGuard no_grad;
  const VARConfig& cfg = var.config();
  VARDP_CHECK(B >= 1, "sampling: batch must be >= 1, got ", B);
  VARDP_CHECK(vae.config().v_patch_nums == cfg.patch_nums,
              "sampling: VQ-VAE and VAR patch numbers differ");
  VARDP_CHECK(vae.config().vocab_size == cfg.vocab_size && vae.config().z_channels == cfg.Cvae,
              "sampling: VQ-VAE (V=", vae.config().vocab_size, ", Cvae=", vae.config().z_channels,
              ") does not match VAR (V=", cfg.vocab_size, ", Cvae=", cfg.Cvae, ")");
  const torch::Device device = var.lvl_1L.device();
  const int64_t SN = cfg.num_scales(), C = cfg.embed_dim, Cvae = cfg.Cvae;
  const int64_t first_l = cfg.first_l();

  // Sampling never uses dropout or drop-path; restore the caller's mode afterwards.
  const bool was_training = var.is_training();
  var.eval();

  c10::optional<at::Generator> rng;
  if (opt.seed) rng = compat::make_generator(device, *opt.seed);

  if (!labels.defined()) {
    torch::Tensor uniform =
        torch::full({1, cfg.num_classes}, 1.0 / static_cast<double>(cfg.num_classes),
                    torch::TensorOptions().device(device));
    labels = torch::multinomial(uniform, B, /*replacement=*/true, rng).reshape({B});
  } else {
    VARDP_CHECK(labels.dim() == 1 && labels.size(0) == B, "sampling: labels must be (", B,
                "), got ", labels.sizes());
    labels = labels.to(device).to(torch::kLong);
    labels = torch::where(labels < 0, torch::full({}, cfg.num_classes, labels.options()), labels);
    VARDP_CHECK(labels.max().item<int64_t>() <= cfg.num_classes, "sampling: class id ",
                labels.max().item<int64_t>(), " >= num_classes ", cfg.num_classes);
  }

  SampleResult res;
  res.labels = labels;
  torch::Tensor cond_BD =
      var.class_embedding(torch::cat({labels, torch::full_like(labels, cfg.num_classes)}));
  torch::Tensor lvl_pos = var.level_position(cfg.L(), 2 * B);
  torch::Tensor next_token_map = cond_BD.unsqueeze(1).expand({2 * B, first_l, C}) +
                                 var.start_position(2 * B) + lvl_pos.slice(1, 0, first_l);
  int64_t cur_L = 0;
  torch::Tensor f_hat = torch::zeros({B, Cvae, cfg.patch_nums.back(), cfg.patch_nums.back()},
                                     cond_BD.options());
  var.kv_caching(true);
  try {
    for (int64_t si = 0; si < SN; ++si) {
      const int64_t pn = cfg.patch_nums[si];
      const double ratio = SN > 1 ? static_cast<double>(si) / static_cast<double>(SN - 1) : 0.0;
      cur_L += pn * pn;
      torch::Tensor cond = var.block_condition(cond_BD);
      torch::Tensor x = next_token_map;
      for (auto& b : var.blocks) x = b->forward(x, cond, torch::Tensor());
      torch::Tensor logits = var.get_logits(x, cond_BD);
      if (opt.record_logits) res.logits_raw.push_back(logits.clone());

      const double t = opt.cfg * ratio;
      logits = (1 + t) * logits.slice(0, 0, B) - t * logits.slice(0, B, 2 * B);

      torch::Tensor kept;
      torch::Tensor idx_Bl = sample_with_top_k_top_p_(logits, opt.top_k, opt.top_p, rng, &kept);
      res.tokens.push_back(idx_Bl);
      if (opt.record_kept) res.kept.push_back(kept);

      torch::Tensor h;
      const torch::Tensor& E = vae.quantize->embedding->weight;
      if (!opt.more_smooth) {
        h = torch::embedding(E, idx_Bl);  // (B, l, Cvae)
      } else {
        // Visualisation only: a soft mix of codes (mask-git style temperature schedule).
        const double gum_t = std::max(0.27 * (1 - ratio * 0.95), 0.005);
        h = torch::matmul(gumbel_softmax_with_rng(logits.mul(1 + ratio), gum_t, -1, rng),
                          E.unsqueeze(0));
      }
      h = h.transpose(1, 2).reshape({B, Cvae, pn, pn});
      next_token_map = vae.quantize->get_next_autoregressive_input(si, SN, f_hat, h);
      if (si != SN - 1) {
        const int64_t pn_next = cfg.patch_nums[si + 1];
        next_token_map = next_token_map.view({B, Cvae, -1}).transpose(1, 2);
        next_token_map = var.word_embed->forward(next_token_map) +
                         lvl_pos.slice(1, cur_L, cur_L + pn_next * pn_next);
        next_token_map = next_token_map.repeat({2, 1, 1});  // doubled batch for CFG
      }
    }
  } catch (...) {
    var.kv_caching(false);
    if (was_training) var.train();
    throw;
  }
  var.kv_caching(false);
  if (was_training) var.train();
  res.f_hat = f_hat;
  res.images = vae.fhat_to_img(f_hat).add(1).mul(0.5);
  return res;
}

}  // namespace vardp::model
