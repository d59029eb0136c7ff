// Analytic FLOPs of the frozen VQ-VAE's work in a training step, per example-view (forward only:
// nothing of the VQ-VAE is trained). Convention of var_flops.hpp: 2 FLOPs per multiply-add of a
// convolution or matrix product, i.e. 2 * H_out * W_out * C_out * C_in * k^2 for a convolution.
//  * encoder: Encoder (src/model/vqvae.cpp: conv_in, the resolution levels' ResNet blocks,
//    attention blocks and stride-2 downsampling, the middle blocks, conv_out) + quant_conv, on the
//    image at data.image_size. Skipped when training from a token cache.
//  * quantize: the multi-scale residual quantiser (f_to_idxBl_or_fhat): per scale the squared
//    distances of its pn^2 latents to the V codes (2 pn^2 Cvae V) and one Phi convolution at the
//    full latent resolution (when quant_resi != 0). Skipped with a token cache.
//  * var_input: idxBl_to_var_input, which also runs with a token cache: the Phi convolutions of
//    the first SN - 1 scales.
// (LibTorch 1.13's profiler counts the encoder's convolutions; it reports 0 for the in-place
// addmm_ of the code distances and for convolutions called with integer padding, as the Phi's.)
#pragma once

namespace vardp::model {
struct VQVAEConfig;
}

namespace vardp::profile {

struct TokenizerFlops {
  double encoder = 0;
  double quantize = 0;
  double var_input = 0;
};

TokenizerFlops tokenizer_flops(const model::VQVAEConfig& cfg);

}  // namespace vardp::profile
