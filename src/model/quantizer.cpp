// Multi-scale residual quantiser (official models/quant.py, VectorQuantizer2 and the Phi classes).
#include "vardp/model/quantizer.hpp"

#include <cmath>
#include <limits>

#include "vardp/util/error.hpp"

namespace vardp::model {

namespace F = torch::nn::functional;

namespace {

torch::Tensor area_resize(const torch::Tensor& x, int64_t h, int64_t w) {
  return F::interpolate(
      x, F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kArea));
}

// F.interpolate(mode='bicubic') with the default align_corners=False.
torch::Tensor bicubic_resize(const torch::Tensor& x, int64_t h, int64_t w) {
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{h, w})
                               .mode(torch::kBicubic)
                               .align_corners(false));
}

}  // namespace

// ---- Phi ---------------------------------------------------------------------------------

PhiImpl::PhiImpl(int64_t channels, double resi_ratio)
    : channels_(channels), resi_ratio_(std::abs(resi_ratio)) {
  reset();
}

void PhiImpl::reset() {
  // nn.Conv2d(C, C, 3, padding=1) with PyTorch's default initialisation.
  weight = register_parameter("weight", torch::empty({channels_, channels_, 3, 3}));
  bias = register_parameter("bias", torch::empty({channels_}));
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  const double bound = 1.0 / std::sqrt(static_cast<double>(channels_ * 9));
  bias.uniform_(-bound, bound);
}

torch::Tensor PhiImpl::forward(const torch::Tensor& h) {
  return h.mul(1 - resi_ratio_) +
         torch::conv2d(h, weight, bias, /*stride=*/1, /*padding=*/1).mul_(resi_ratio_);
}

std::vector<double> phi_ticks(int64_t K) {
  VARDP_CHECK(K >= 1, "phi_ticks: K must be >= 1, got ", K);
  // numpy.linspace(start, stop, K): y = arange(K) * ((stop - start) / (K - 1)) + start, with the
  // last element set to stop exactly.
  const double start = K == 4 ? 1.0 / 3.0 / static_cast<double>(K) : 1.0 / 2.0 / static_cast<double>(K);
  const double stop = 1.0 - start;
  std::vector<double> ticks(K);
  if (K == 1) {
    ticks[0] = start;
    return ticks;
  }
  const double step = (stop - start) / static_cast<double>(K - 1);
  for (int64_t i = 0; i < K; ++i) ticks[i] = static_cast<double>(i) * step + start;
  ticks[K - 1] = stop;
  return ticks;
}

int64_t phi_index(int64_t K, int64_t si, int64_t SN) {
  const double at = SN > 1 ? static_cast<double>(si) / static_cast<double>(SN - 1) : 0.0;
  const std::vector<double> ticks = phi_ticks(K);
  int64_t best = 0;
  double best_d = std::numeric_limits<double>::infinity();
  for (int64_t k = 0; k < K; ++k) {
    const double d = std::abs(ticks[k] - at);
    if (d < best_d) {  // strict: the first index wins ties, as numpy.argmin
      best_d = d;
      best = k;
    }
  }
  return best;
}

// ---- PhiSet ------------------------------------------------------------------------------

PhiSetImpl::PhiSetImpl(PhiSharing sharing, int64_t count, int64_t channels, double quant_resi)
    : sharing_(sharing) {
  const bool identity = std::abs(quant_resi) <= 1e-6;
  if (sharing == PhiSharing::shared) count = 1;
  VARDP_CHECK(count >= 1, "quantizer: number of Phi layers must be >= 1, got ", count);
  for (int64_t k = 0; k < count; ++k) phis_.push_back(identity ? Phi(nullptr) : Phi(channels, quant_resi));
  if (identity) return;
  switch (sharing) {
    case PhiSharing::shared:  // PhiShared: self.qresi
      register_module("qresi", phis_[0]);
      break;
    case PhiSharing::partially_shared: {  // PhiPartiallyShared: self.qresi_ls = ModuleList
      torch::nn::ModuleList list;
      for (auto& p : phis_) list->push_back(p);
      register_module("qresi_ls", list);
      break;
    }
    case PhiSharing::non_shared:  // PhiNonShared is itself the ModuleList
      for (size_t k = 0; k < phis_.size(); ++k) register_module(std::to_string(k), phis_[k]);
      break;
  }
}

int64_t PhiSetImpl::index(int64_t si, int64_t SN) const {
  if (sharing_ == PhiSharing::shared) return 0;
  return phi_index(count(), si, SN);
}

torch::Tensor PhiSetImpl::apply(const torch::Tensor& h, int64_t si, int64_t SN) const {
  Phi phi = phis_[index(si, SN)];  // a shared handle
  return phi.is_empty() ? h : phi->forward(h);
}

// ---- VectorQuantizer2 --------------------------------------------------------------------

VectorQuantizer2Impl::VectorQuantizer2Impl(QuantizerConfig cfg) : cfg_(std::move(cfg)) {
  VARDP_CHECK(!cfg_.v_patch_nums.empty(), "quantizer: v_patch_nums is empty");
  const int64_t SN = num_scales();
  PhiSharing sharing;
  int64_t count;
  if (cfg_.share_quant_resi == 0) {
    sharing = PhiSharing::non_shared;
    count = cfg_.default_qresi_counts ? cfg_.default_qresi_counts : SN;
  } else if (cfg_.share_quant_resi == 1) {
    sharing = PhiSharing::shared;
    count = 1;
  } else {
    sharing = PhiSharing::partially_shared;
    count = cfg_.share_quant_resi;
  }
  quant_resi = register_module("quant_resi", PhiSet(sharing, count, cfg_.Cvae, cfg_.quant_resi));
  ema_vocab_hit_SV = register_buffer("ema_vocab_hit_SV", torch::zeros({SN, cfg_.vocab_size}));
  embedding = register_module(
      "embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(cfg_.vocab_size, cfg_.Cvae)));
}

torch::Tensor VectorQuantizer2Impl::nearest_code(const torch::Tensor& z_NC) const {
  const torch::Tensor E = embedding->weight.detach();
  if (cfg_.using_znorm) {
    auto opt = F::NormalizeFuncOptions().dim(-1);
    return torch::argmax(torch::matmul(F::normalize(z_NC, opt),
                                       F::normalize(E.t(), F::NormalizeFuncOptions().dim(0))),
                         1);
  }
  // Same operations as the official code (sum of squares, then addmm_ with alpha=-2), so ties and
  // near-ties resolve identically.
  torch::Tensor d = torch::sum(z_NC.square(), 1, /*keepdim=*/true) + torch::sum(E.square(), 1);
  d.addmm_(z_NC, E.t(), /*beta=*/1, /*alpha=*/-2);
  return torch::argmin(d, 1);
}

QuantizerOutput VectorQuantizer2Impl::forward(const torch::Tensor& f_in) {
  torch::Tensor f = f_in.scalar_type() == torch::kFloat ? f_in : f_in.to(torch::kFloat);
  const int64_t B = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3);
  const int64_t SN = num_scales();
  VARDP_CHECK(cfg_.v_patch_nums.back() == H && H == W, "quantizer: feature map ", H, "x", W,
              " does not match the last patch number ", cfg_.v_patch_nums.back());
  const torch::Tensor f_no_grad = f.detach();
  torch::Tensor f_rest = f_no_grad.clone();
  torch::Tensor f_hat = torch::zeros_like(f_rest);
  torch::Tensor loss = torch::zeros({}, f.options());
  torch::Tensor hits = torch::zeros({cfg_.vocab_size}, f.options());
  for (int64_t si = 0; si < SN; ++si) {
    const int64_t pn = cfg_.v_patch_nums[si];
    torch::Tensor idx;
    {
      torch::NoGradGuard no_grad;
      torch::Tensor rest = si != SN - 1 ? area_resize(f_rest, pn, pn) : f_rest;
      idx = nearest_code(rest.permute({0, 2, 3, 1}).reshape({-1, C}));
    }
    hits.add_(idx.bincount({}, cfg_.vocab_size).to(torch::kFloat));
    torch::Tensor h = embedding->forward(idx.view({B, pn, pn})).permute({0, 3, 1, 2});
    h = si != SN - 1 ? bicubic_resize(h, H, W).contiguous() : h.contiguous();
    h = quant_resi->apply(h, si, SN);
    f_hat = f_hat + h;
    f_rest.sub_(h.detach());
    loss = loss + F::mse_loss(f_hat.detach(), f).mul(cfg_.beta) + F::mse_loss(f_hat, f_no_grad);
  }
  loss = loss * (1.0 / static_cast<double>(SN));
  // Straight-through: the value of f_hat, the gradient of f.
  torch::Tensor st = (f_hat.detach() - f_no_grad).add_(f);
  return {st, loss, hits};
}

std::vector<torch::Tensor> VectorQuantizer2Impl::f_to_idxBl_or_fhat(const torch::Tensor& f_BChw,
                                                                    bool to_fhat,
                                                                    std::vector<int64_t> patch_nums) {
  torch::NoGradGuard no_grad;
  if (patch_nums.empty()) patch_nums = cfg_.v_patch_nums;
  VARDP_CHECK(f_BChw.dim() == 4, "f_to_idxBl_or_fhat: expected (B, C, H, W), got ",
              f_BChw.sizes());
  const int64_t B = f_BChw.size(0), C = f_BChw.size(1), H = f_BChw.size(2), W = f_BChw.size(3);
  VARDP_CHECK(C == cfg_.Cvae, "f_to_idxBl_or_fhat: ", C, " channels, quantizer has ", cfg_.Cvae);
  VARDP_CHECK(patch_nums.back() == H && patch_nums.back() == W, "f_to_idxBl_or_fhat: last patch ",
              patch_nums.back(), " != feature map ", H, "x", W);
  torch::Tensor f_rest = f_BChw.detach().clone();
  torch::Tensor f_hat = torch::zeros_like(f_rest);
  std::vector<torch::Tensor> out;
  const int64_t SN = static_cast<int64_t>(patch_nums.size());
  for (int64_t si = 0; si < SN; ++si) {
    const int64_t pn = patch_nums[si];
    torch::Tensor z = si != SN - 1 ? area_resize(f_rest, pn, pn) : f_rest;
    torch::Tensor idx = nearest_code(z.permute({0, 2, 3, 1}).reshape({-1, C}));
    torch::Tensor h = embedding->forward(idx.view({B, pn, pn})).permute({0, 3, 1, 2});
    h = si != SN - 1 ? bicubic_resize(h, H, W).contiguous() : h.contiguous();
    h = quant_resi->apply(h, si, SN);
    f_hat.add_(h);
    f_rest.sub_(h);
    out.push_back(to_fhat ? f_hat.clone() : idx.reshape({B, pn * pn}));
  }
  return out;
}

std::vector<torch::Tensor> VectorQuantizer2Impl::embed_to_fhat(
    const std::vector<torch::Tensor>& ms_h_BChw, bool all_to_max_scale, bool last_one) {
  const int64_t SN = num_scales();
  VARDP_CHECK(static_cast<int64_t>(ms_h_BChw.size()) == SN, "embed_to_fhat: ", ms_h_BChw.size(),
              " scales given, quantizer has ", SN);
  const int64_t B = ms_h_BChw[0].size(0);
  const int64_t H = cfg_.v_patch_nums.back();
  std::vector<torch::Tensor> out;
  torch::Tensor f_hat;
  if (all_to_max_scale) {
    f_hat = torch::zeros({B, cfg_.Cvae, H, H}, ms_h_BChw[0].options().dtype(torch::kFloat));
    for (int64_t si = 0; si < SN; ++si) {
      torch::Tensor h = ms_h_BChw[si];
      if (si < SN - 1) h = bicubic_resize(h, H, H);
      f_hat.add_(quant_resi->apply(h, si, SN));
      if (!last_one) out.push_back(f_hat.clone());
    }
  } else {
    // The official code marks this path experimental: f_hat grows scale by scale.
    const int64_t p0 = cfg_.v_patch_nums[0];
    f_hat = torch::zeros({B, cfg_.Cvae, p0, p0}, ms_h_BChw[0].options().dtype(torch::kFloat));
    for (int64_t si = 0; si < SN; ++si) {
      const int64_t pn = cfg_.v_patch_nums[si];
      f_hat = bicubic_resize(f_hat, pn, pn);
      f_hat.add_(quant_resi->apply(ms_h_BChw[si], si, SN));
      if (!last_one) out.push_back(f_hat);
    }
  }
  if (last_one) out.push_back(f_hat);
  return out;
}

torch::Tensor VectorQuantizer2Impl::idxBl_to_var_input(
    const std::vector<torch::Tensor>& gt_ms_idx_Bl) {
  torch::NoGradGuard no_grad;
  const int64_t SN = num_scales();
  VARDP_CHECK(static_cast<int64_t>(gt_ms_idx_Bl.size()) >= SN - 1, "idxBl_to_var_input: ",
              gt_ms_idx_Bl.size(), " scales given, need ", SN - 1);
  const int64_t B = gt_ms_idx_Bl[0].size(0);
  const int64_t C = cfg_.Cvae;
  const int64_t H = cfg_.v_patch_nums.back();
  torch::Tensor f_hat =
      torch::zeros({B, C, H, H}, torch::TensorOptions().device(gt_ms_idx_Bl[0].device()));
  std::vector<torch::Tensor> next_scales;
  int64_t pn_next = cfg_.v_patch_nums[0];
  for (int64_t si = 0; si < SN - 1; ++si) {
    torch::Tensor h = bicubic_resize(
        embedding->forward(gt_ms_idx_Bl[si]).transpose(1, 2).reshape({B, C, pn_next, pn_next}), H, H);
    f_hat.add_(quant_resi->apply(h, si, SN));
    pn_next = cfg_.v_patch_nums[si + 1];
    next_scales.push_back(area_resize(f_hat, pn_next, pn_next).view({B, C, -1}).transpose(1, 2));
  }
  if (next_scales.empty()) return torch::zeros({B, 0, C}, f_hat.options());
  return torch::cat(next_scales, 1);
}

torch::Tensor VectorQuantizer2Impl::get_next_autoregressive_input(int64_t si, int64_t SN,
                                                                  torch::Tensor& f_hat,
                                                                  const torch::Tensor& h_BChw) {
  const int64_t HW = cfg_.v_patch_nums.back();
  if (si != SN - 1) {
    f_hat.add_(quant_resi->apply(bicubic_resize(h_BChw, HW, HW), si, SN));  // conv after upsample
    const int64_t pn = cfg_.v_patch_nums[si + 1];
    return area_resize(f_hat, pn, pn);
  }
  f_hat.add_(quant_resi->apply(h_BChw, si, SN));
  return f_hat;
}

}  // namespace vardp::model
