// VQ-VAE encoder/decoder (official models/basic_vae.py) and the VQVAE wrapper (models/vqvae.py).
#include "vardp/model/vqvae.hpp"

#include <cmath>
#include <sstream>

#include "vardp/util/error.hpp"

namespace vardp::model {

namespace F = torch::nn::functional;
namespace nn = torch::nn;

namespace {

nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad));
}

nn::GroupNorm group_norm(int64_t groups, int64_t channels, double eps) {
  return nn::GroupNorm(nn::GroupNormOptions(groups, channels).eps(eps).affine(true));
}

std::string join(const std::vector<int64_t>& v) {
  std::ostringstream os;
  for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  return os.str();
}

}  // namespace

// ---- config --------------------------------------------------------------------------------

QuantizerConfig VQVAEConfig::quantizer() const {
  QuantizerConfig q;
  q.vocab_size = vocab_size;
  q.Cvae = z_channels;
  q.using_znorm = using_znorm;
  q.beta = beta;
  q.default_qresi_counts = default_qresi_counts;
  q.v_patch_nums = v_patch_nums;
  q.quant_resi = quant_resi;
  q.share_quant_resi = share_quant_resi;
  return q;
}

void VQVAEConfig::validate() const {
  const std::string ctx = "VQVAEConfig";
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw Error(what, ctx);
  };
  need(vocab_size > 0, str("vocab_size must be > 0, got ", vocab_size));
  need(z_channels > 0, str("z_channels must be > 0, got ", z_channels));
  need(ch > 0, str("ch must be > 0, got ", ch));
  need(!ch_mult.empty(), "ch_mult is empty");
  for (int64_t m : ch_mult) need(m > 0, str("ch_mult entries must be > 0: ", join(ch_mult)));
  need(num_res_blocks >= 1, str("num_res_blocks must be >= 1, got ", num_res_blocks));
  need(norm_groups >= 1, str("norm_groups must be >= 1, got ", norm_groups));
  need(ch % norm_groups == 0, str("ch=", ch, " is not divisible by norm_groups=", norm_groups));
  need(quant_conv_ks % 2 == 1, str("quant_conv_ks must be odd, got ", quant_conv_ks));
  need(share_quant_resi >= 0, str("share_quant_resi must be >= 0, got ", share_quant_resi));
  need(!v_patch_nums.empty(), "v_patch_nums is empty");
  for (size_t i = 0; i < v_patch_nums.size(); ++i) {
    need(v_patch_nums[i] >= 1, str("v_patch_nums must be >= 1: ", join(v_patch_nums)));
    if (i) need(v_patch_nums[i] >= v_patch_nums[i - 1],
                str("v_patch_nums must not decrease: ", join(v_patch_nums)));
  }
}

std::string VQVAEConfig::describe() const {
  std::ostringstream os;
  os << "VQVAE(vocab_size=" << vocab_size << ", z_channels=" << z_channels << ", ch=" << ch
     << ", ch_mult=(" << join(ch_mult) << "), num_res_blocks=" << num_res_blocks
     << ", using_sa=" << using_sa << ", using_mid_sa=" << using_mid_sa
     << ", quant_conv_ks=" << quant_conv_ks << ", quant_resi=" << quant_resi
     << ", share_quant_resi=" << share_quant_resi
     << ", default_qresi_counts=" << default_qresi_counts;
  if (v_patch_nums.empty()) {
    os << ", v_patch_nums=(not stored), downsample=" << downsample() << ")";
  } else {
    os << ", v_patch_nums=(" << join(v_patch_nums) << "), downsample=" << downsample()
       << ", image_size=" << image_size() << ")";
  }
  return os.str();
}

// ---- blocks --------------------------------------------------------------------------------

ResnetBlockImpl::ResnetBlockImpl(int64_t in_channels, int64_t out_channels, double dropout,
                                 int64_t groups, double eps)
    : dropout_(dropout) {
  norm1 = register_module("norm1", group_norm(groups, in_channels, eps));
  conv1 = register_module("conv1", conv(in_channels, out_channels, 3, 1, 1));
  norm2 = register_module("norm2", group_norm(groups, out_channels, eps));
  conv2 = register_module("conv2", conv(out_channels, out_channels, 3, 1, 1));
  if (in_channels != out_channels)
    nin_shortcut = register_module("nin_shortcut", conv(in_channels, out_channels, 1, 1, 0));
}

torch::Tensor ResnetBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = conv1->forward(torch::silu(norm1->forward(x)));
  h = torch::silu(norm2->forward(h));
  if (dropout_ > 1e-6) h = torch::dropout(h, dropout_, is_training());
  h = conv2->forward(h);
  return (nin_shortcut.is_empty() ? x : nin_shortcut->forward(x)) + h;
}

AttnBlockImpl::AttnBlockImpl(int64_t channels, int64_t groups, double eps)
    : C_(channels), w_ratio_(std::pow(static_cast<double>(channels), -0.5)) {
  norm = register_module("norm", group_norm(groups, channels, eps));
  qkv = register_module("qkv", conv(channels, 3 * channels, 1, 1, 0));
  proj_out = register_module("proj_out", conv(channels, channels, 1, 1, 0));
}

torch::Tensor AttnBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor qkv_ = qkv->forward(norm->forward(x));
  const int64_t B = qkv_.size(0), H = qkv_.size(2), W = qkv_.size(3);
  auto parts = qkv_.reshape({B, 3, C_, H, W}).unbind(1);
  torch::Tensor q = parts[0].reshape({B, C_, H * W}).permute({0, 2, 1}).contiguous();  // B,HW,C
  torch::Tensor k = parts[1].reshape({B, C_, H * W}).contiguous();                     // B,C,HW
  torch::Tensor w = torch::bmm(q, k).mul_(w_ratio_).softmax(2);                         // B,HW,HW
  torch::Tensor v = parts[2].reshape({B, C_, H * W}).contiguous();
  torch::Tensor h = torch::bmm(v, w.permute({0, 2, 1}).contiguous()).view({B, C_, H, W});
  return x + proj_out->forward(h);
}

Downsample2xImpl::Downsample2xImpl(int64_t channels) {
  conv = register_module("conv", model::conv(channels, channels, 3, 2, 0));
}

torch::Tensor Downsample2xImpl::forward(const torch::Tensor& x) {
  return conv->forward(F::pad(x, F::PadFuncOptions({0, 1, 0, 1}).mode(torch::kConstant).value(0)));
}

Upsample2xImpl::Upsample2xImpl(int64_t channels) {
  conv = register_module("conv", model::conv(channels, channels, 3, 1, 1));
}

torch::Tensor Upsample2xImpl::forward(const torch::Tensor& x) {
  return conv->forward(F::interpolate(x, F::InterpolateFuncOptions()
                                             .scale_factor(std::vector<double>{2.0, 2.0})
                                             .mode(torch::kNearest)));
}

LevelImpl::LevelImpl() {
  block_list_ = register_module("block", nn::ModuleList());
  attn_list_ = register_module("attn", nn::ModuleList());
}

void LevelImpl::add_block(ResnetBlock b) {
  block_list_->push_back(b);
  blocks.push_back(std::move(b));
}

void LevelImpl::add_attn(AttnBlock a) {
  attn_list_->push_back(a);
  attns.push_back(std::move(a));
}

void LevelImpl::set_downsample(Downsample2x d) { downsample = register_module("downsample", d); }

void LevelImpl::set_upsample(Upsample2x u) { upsample = register_module("upsample", u); }

MidImpl::MidImpl(int64_t channels, bool using_sa, double dropout, int64_t groups, double eps) {
  block_1 = register_module("block_1", ResnetBlock(channels, channels, dropout, groups, eps));
  if (using_sa) attn_1 = register_module("attn_1", AttnBlock(channels, groups, eps));
  block_2 = register_module("block_2", ResnetBlock(channels, channels, dropout, groups, eps));
}

torch::Tensor MidImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = block_1->forward(x);
  if (!attn_1.is_empty()) h = attn_1->forward(h);
  return block_2->forward(h);
}

// ---- encoder / decoder ---------------------------------------------------------------------

EncoderImpl::EncoderImpl(const VQVAEConfig& cfg) {
  const int64_t n = static_cast<int64_t>(cfg.ch_mult.size());
  const int64_t g = cfg.norm_groups;
  const double eps = cfg.norm_eps;
  conv_in = register_module("conv_in", conv(cfg.in_channels, cfg.ch, 3, 1, 1));
  nn::ModuleList down_list;
  int64_t block_in = cfg.ch;
  for (int64_t i = 0; i < n; ++i) {
    Level level;
    block_in = cfg.ch * (i == 0 ? 1 : cfg.ch_mult[i - 1]);
    const int64_t block_out = cfg.ch * cfg.ch_mult[i];
    for (int64_t b = 0; b < cfg.num_res_blocks; ++b) {
      level->add_block(ResnetBlock(block_in, block_out, cfg.dropout, g, eps));
      block_in = block_out;
      if (i == n - 1 && cfg.using_sa) level->add_attn(AttnBlock(block_in, g, eps));
    }
    if (i != n - 1) level->set_downsample(Downsample2x(block_in));
    down_list->push_back(level);
    down.push_back(level);
  }
  register_module("down", down_list);
  mid = register_module("mid", Mid(block_in, cfg.using_mid_sa, cfg.dropout, g, eps));
  norm_out = register_module("norm_out", group_norm(g, block_in, eps));
  conv_out = register_module("conv_out", conv(block_in, cfg.z_channels, 3, 1, 1));
}

torch::Tensor EncoderImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = conv_in->forward(x);
  for (auto& level : down) {
    for (size_t b = 0; b < level->blocks.size(); ++b) {
      h = level->blocks[b]->forward(h);
      if (!level->attns.empty()) h = level->attns[b]->forward(h);
    }
    if (!level->downsample.is_empty()) h = level->downsample->forward(h);
  }
  h = mid->forward(h);
  return conv_out->forward(torch::silu(norm_out->forward(h)));
}

DecoderImpl::DecoderImpl(const VQVAEConfig& cfg) {
  const int64_t n = static_cast<int64_t>(cfg.ch_mult.size());
  const int64_t g = cfg.norm_groups;
  const double eps = cfg.norm_eps;
  int64_t block_in = cfg.ch * cfg.ch_mult[n - 1];
  conv_in = register_module("conv_in", conv(cfg.z_channels, block_in, 3, 1, 1));
  mid = register_module("mid", Mid(block_in, cfg.using_mid_sa, cfg.dropout, g, eps));
  up.resize(n, Level(nullptr));
  for (int64_t i = n - 1; i >= 0; --i) {
    Level level;
    const int64_t block_out = cfg.ch * cfg.ch_mult[i];
    for (int64_t b = 0; b < cfg.num_res_blocks + 1; ++b) {
      level->add_block(ResnetBlock(block_in, block_out, cfg.dropout, g, eps));
      block_in = block_out;
      if (i == n - 1 && cfg.using_sa) level->add_attn(AttnBlock(block_in, g, eps));
    }
    if (i != 0) level->set_upsample(Upsample2x(block_in));
    up[i] = level;
  }
  nn::ModuleList up_list;
  for (auto& level : up) up_list->push_back(level);
  register_module("up", up_list);
  norm_out = register_module("norm_out", group_norm(g, block_in, eps));
  conv_out = register_module("conv_out", conv(block_in, cfg.in_channels, 3, 1, 1));
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& z) {
  torch::Tensor h = mid->forward(conv_in->forward(z));
  for (int64_t i = static_cast<int64_t>(up.size()) - 1; i >= 0; --i) {
    auto& level = up[i];
    for (size_t b = 0; b < level->blocks.size(); ++b) {
      h = level->blocks[b]->forward(h);
      if (!level->attns.empty()) h = level->attns[b]->forward(h);
    }
    if (!level->upsample.is_empty()) h = level->upsample->forward(h);
  }
  return conv_out->forward(torch::silu(norm_out->forward(h)));
}

// ---- VQVAE ---------------------------------------------------------------------------------

VQVAEImpl::VQVAEImpl(VQVAEConfig cfg) : cfg_(std::move(cfg)) {
  cfg_.validate();
  encoder = register_module("encoder", Encoder(cfg_));
  decoder = register_module("decoder", Decoder(cfg_));
  quantize = register_module("quantize", VectorQuantizer2(cfg_.quantizer()));
  const int64_t ks = cfg_.quant_conv_ks;
  quant_conv = register_module("quant_conv", conv(cfg_.z_channels, cfg_.z_channels, ks, 1, ks / 2));
  post_quant_conv =
      register_module("post_quant_conv", conv(cfg_.z_channels, cfg_.z_channels, ks, 1, ks / 2));
  if (cfg_.test_mode) {
    eval();
    for (auto& p : parameters()) p.set_requires_grad(false);
  }
}

std::pair<torch::Tensor, torch::Tensor> VQVAEImpl::forward(const torch::Tensor& img) {
  QuantizerOutput q = quantize->forward(quant_conv->forward(encoder->forward(img)));
  return {decoder->forward(post_quant_conv->forward(q.f_hat)), q.vq_loss};
}

torch::Tensor VQVAEImpl::encode_f(const torch::Tensor& img) {
  VARDP_CHECK(img.dim() == 4 && img.size(1) == cfg_.in_channels, "VQVAE: expected images (B, ",
              cfg_.in_channels, ", H, W), got ", img.sizes());
  return quant_conv->forward(encoder->forward(img));
}

std::vector<torch::Tensor> VQVAEImpl::img_to_idxBl(const torch::Tensor& img) {
  torch::NoGradGuard no_grad;
  return quantize->f_to_idxBl_or_fhat(encode_f(img), /*to_fhat=*/false);
}

torch::Tensor VQVAEImpl::fhat_to_img(const torch::Tensor& f_hat) {
  return decoder->forward(post_quant_conv->forward(f_hat)).clamp(-1, 1);
}

torch::Tensor VQVAEImpl::idxBl_to_fhat(const std::vector<torch::Tensor>& ms_idx_Bl) {
  const int64_t B = ms_idx_Bl.at(0).size(0);
  std::vector<torch::Tensor> ms_h;
  for (const auto& idx : ms_idx_Bl) {
    const int64_t pn = std::llround(std::sqrt(static_cast<double>(idx.size(1))));
    VARDP_CHECK(pn * pn == idx.size(1), "idxBl_to_fhat: ", idx.size(1), " tokens is not a square");
    ms_h.push_back(
        quantize->embedding->forward(idx).transpose(1, 2).reshape({B, cfg_.z_channels, pn, pn}));
  }
  return quantize->embed_to_fhat(ms_h, /*all_to_max_scale=*/true, /*last_one=*/true).back();
}

torch::Tensor VQVAEImpl::idxBl_to_img(const std::vector<torch::Tensor>& ms_idx_Bl) {
  return fhat_to_img(idxBl_to_fhat(ms_idx_Bl));
}

std::vector<torch::Tensor> VQVAEImpl::img_to_reconstructed_img(const torch::Tensor& img,
                                                               bool last_one) {
  auto f_hats = quantize->f_to_idxBl_or_fhat(encode_f(img), /*to_fhat=*/true);
  std::vector<torch::Tensor> out;
  if (last_one) {
    out.push_back(fhat_to_img(f_hats.back()));
  } else {
    for (const auto& f : f_hats) out.push_back(fhat_to_img(f));
  }
  return out;
}

}  // namespace vardp::model
