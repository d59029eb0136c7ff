// FLOPs of the VQ-VAE tokenisation (the architecture of src/model/vqvae.cpp and quantizer.cpp).
#include "vardp/profile/tokenizer_flops.hpp"

#include <cmath>

#include "vardp/model/vqvae.hpp"

namespace vardp::profile {

namespace {

double conv(double side_out, double c_in, double c_out, double k) {
  return 2.0 * side_out * side_out * c_out * c_in * k * k;
}

// ResnetBlock: conv1 (in -> out, 3x3), conv2 (out -> out, 3x3), a 1x1 shortcut when in != out.
double resnet_block(double side, double c_in, double c_out) {
  return conv(side, c_in, c_out, 3) + conv(side, c_out, c_out, 3) + (c_in != c_out ? conv(side, c_in, c_out, 1) : 0.0);
}

// AttnBlock: 1x1 qkv (C -> 3C), the HW x HW products q k and v w^T, 1x1 proj_out.
double attn_block(double side, double c) {
  const double hw = side * side;
  return conv(side, c, 3 * c, 1) + 2.0 * (2.0 * hw * hw * c) + conv(side, c, c, 1);
}

}  // namespace

TokenizerFlops tokenizer_flops(const model::VQVAEConfig& cfg) {
  TokenizerFlops f;
  const auto n = static_cast<int64_t>(cfg.ch_mult.size());
  const auto ch = static_cast<double>(cfg.ch);
  double side = static_cast<double>(cfg.image_size());
  f.encoder += conv(side, static_cast<double>(cfg.in_channels), ch, 3);
  double block_in = ch;
  for (int64_t i = 0; i < n; ++i) {
    block_in = ch * static_cast<double>(i == 0 ? 1 : cfg.ch_mult[static_cast<size_t>(i - 1)]);
    const double block_out = ch * static_cast<double>(cfg.ch_mult[static_cast<size_t>(i)]);
    for (int64_t b = 0; b < cfg.num_res_blocks; ++b) {
      f.encoder += resnet_block(side, block_in, block_out);
      block_in = block_out;
      if (i == n - 1 && cfg.using_sa) f.encoder += attn_block(side, block_in);
    }
    if (i != n - 1) {
      side = std::floor(side / 2);  // zero-pad right/bottom by one, 3x3 stride 2
      f.encoder += conv(side, block_in, block_in, 3);
    }
  }
  f.encoder += 2 * resnet_block(side, block_in, block_in) + (cfg.using_mid_sa ? attn_block(side, block_in) : 0.0);
  const double z = static_cast<double>(cfg.z_channels);
  f.encoder += conv(side, block_in, z, 3);                                // conv_out
  f.encoder += conv(side, z, z, static_cast<double>(cfg.quant_conv_ks));  // quant_conv

  const bool phi = std::abs(cfg.quant_resi) > 1e-6;
  const double H = static_cast<double>(cfg.v_patch_nums.back());
  const double phi_conv = phi ? conv(H, z, z, 3) : 0.0;
  const double V = static_cast<double>(cfg.vocab_size);
  for (int64_t pn : cfg.v_patch_nums) f.quantize += 2.0 * static_cast<double>(pn * pn) * z * V + phi_conv;
  f.var_input = static_cast<double>(cfg.v_patch_nums.size() - 1) * phi_conv;
  return f;
}

}  // namespace vardp::profile
