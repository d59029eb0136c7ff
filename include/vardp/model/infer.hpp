// Model hyperparameters inferred from checkpoint tensors, and strict loading, so that
// `--vae FILE --var FILE` is all a user passes for the published checkpoints.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "vardp/io/state_dict.hpp"
#include "vardp/model/var.hpp"
#include "vardp/model/vqvae.hpp"

namespace vardp::model {

enum class CheckpointKind { vqvae, var, unknown };
CheckpointKind detect_checkpoint_kind(const io::StateDict& sd);
const char* to_string(CheckpointKind k);

// Patch numbers from the `lvl_1L` buffer: the scale index of every token must run 0, 1, ...,
// SN-1 in non-decreasing blocks (begin/end of each scale), and every block length must be a
// square pn^2. Throws vardp::Error describing the first violation.
std::vector<int64_t> patch_nums_from_lvl_1L(const torch::Tensor& lvl_1L);

// VAR: depth (number of blocks), width (pos_1LC), heads (scale_mul_1H11; without attn_l2_norm
// width/64, the official 64-wide heads), vocabulary (head), Cvae (word_embed), classes
// (class_emb rows - 1), mlp ratio (fc1), shared AdaLN (shared_ada_lin / ada_gss), patch numbers
// (lvl_1L, or the default 10 scales when the file has no lvl_1L and L = 680). Not stored in a
// checkpoint and set to the official build values: drop_path_rate 0.1*depth/24, norm_eps 1e-6,
// cond_drop_rate 0.1. Throws vardp::Error naming the missing or inconsistent key.
VARConfig infer_var_config(const io::StateDict& sd);

// VQ-VAE: vocabulary and Cvae (quantize.embedding), ch (encoder.conv_in), ch_mult (output
// channels of each encoder level / ch), num_res_blocks, attention (encoder.down.<last>.attn /
// encoder.mid.attn_1), quant_conv kernel size, Phi sharing (quant_resi.qresi = shared,
// quant_resi.qresi_ls.<k> = K partially shared, quant_resi.<k> = non-shared; none = identity,
// quant_resi 0). quant_resi ratio itself is not stored: 0.5 as published. patch_nums: the given
// ones (from the VAR); empty: the default 10 scales if the file's ema_vocab_hit_SV has 10 rows,
// otherwise left empty (the VAR checkpoint has to supply them).
VQVAEConfig infer_vqvae_config(const io::StateDict& sd, const std::vector<int64_t>& patch_nums = {});

// Copies `sd` into the module's parameters and buffers (converting floating dtypes), after
// checking that keys and shapes match exactly; otherwise throws one vardp::Error prefixed with
// `what` that lists every missing, unexpected and mis-shaped key, and nothing is modified.
// Like the official VQVAE.load_state_dict, a quantize.ema_vocab_hit_SV with another number of
// scales is accepted and ignored (it is an unused training statistic).
void load_strict(torch::nn::Module& m, const io::StateDict& sd, const std::string& what);

// Buffers (not parameters) in the official state dicts: lvl_1L, attn_bias_for_masking,
// *.zero_k_bias, quantize.ema_vocab_hit_SV.
bool is_buffer_key(const std::string& key);

struct LoadedModels {
  VQVAE vae{nullptr};
  VAR var{nullptr};
};

// Loads both checkpoints (.pth or vardp HDF5), infers both configs (the VQ-VAE's patch numbers
// from the VAR), checks that vocabulary and Cvae agree, loads strictly, puts both in eval mode
// with frozen VQ-VAE, and moves them to `device`.
LoadedModels load_vae_var(const std::string& vae_path, const std::string& var_path,
                          const torch::Device& device = torch::kCPU);

// "cpu", "cuda", "cuda:N", or "auto" (CUDA when available). Throws UsageError otherwise.
torch::Device resolve_device(const std::string& name);

// Images in [0, 1] (B, 3, H, W) -> uint8 (B, H, W, 3) on the CPU: round(x * 255), clamped.
torch::Tensor to_uint8_hwc(const torch::Tensor& images01);

}  // namespace vardp::model
