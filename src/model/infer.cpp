// Hyperparameters from checkpoint tensors, strict loading, and loading both models from files.
#include "vardp/model/infer.hpp"

#include <cctype>
#include <cmath>
#include <set>

#include "vardp/io/module_state.hpp"
#include "vardp/util/error.hpp"

namespace vardp::model {

namespace {

std::vector<int64_t> shape_of(const io::StateDict& sd, const std::string& key,
                              const std::string& what, size_t dims) {
  if (!sd.contains(key)) throw Error(str("missing key '", key, "'"), what);
  const auto s = sd.at(key).sizes();
  if (s.size() != dims)
    throw Error(str("key '", key, "' has ", s.size(), " dimensions, expected ", dims), what);
  return std::vector<int64_t>(s.begin(), s.end());
}

// Indices <i> of keys "<prefix><i>.<rest>" (sorted, unique).
std::set<int64_t> child_indices(const io::StateDict& sd, const std::string& prefix) {
  std::set<int64_t> out;
  for (const auto& key : sd.keys()) {
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    size_t pos = prefix.size();
    size_t end = pos;
    while (end < key.size() && std::isdigit(static_cast<unsigned char>(key[end]))) ++end;
    if (end == pos || end >= key.size() || key[end] != '.') continue;
    out.insert(std::stoll(key.substr(pos, end - pos)));
  }
  return out;
}

int64_t count_contiguous(const std::set<int64_t>& idx, const std::string& what,
                         const std::string& prefix) {
  int64_t n = 0;
  for (int64_t i : idx) {
    if (i != n) throw Error(str("keys '", prefix, "<i>' are not numbered 0..", idx.size() - 1,
                                " (index ", n, " missing)"), what);
    ++n;
  }
  return n;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

CheckpointKind detect_checkpoint_kind(const io::StateDict& sd) {
  if (sd.contains("quantize.embedding.weight") || sd.contains("encoder.conv_in.weight"))
    return CheckpointKind::vqvae;
  if (sd.contains("word_embed.weight") || sd.contains("pos_1LC") || sd.contains("head.weight"))
    return CheckpointKind::var;
  return CheckpointKind::unknown;
}

const char* to_string(CheckpointKind k) {
  switch (k) {
    case CheckpointKind::vqvae: return "VQ-VAE";
    case CheckpointKind::var: return "VAR";
    default: return "unknown";
  }
}

bool is_buffer_key(const std::string& key) {
  return key == "lvl_1L" || key == "attn_bias_for_masking" || ends_with(key, ".zero_k_bias") ||
         key == "quantize.ema_vocab_hit_SV";
}

std::vector<int64_t> patch_nums_from_lvl_1L(const torch::Tensor& lvl_1L) {
  const std::string what = "lvl_1L";
  if (lvl_1L.dim() != 2 || lvl_1L.size(0) != 1 || lvl_1L.size(1) < 1)
    throw Error(str("expected shape (1, L), got ", lvl_1L.sizes()), what);
  torch::Tensor lv = lvl_1L.to(torch::kLong).contiguous().view({-1});
  const int64_t L = lv.size(0);
  const int64_t* p = lv.data_ptr<int64_t>();
  // begin/end of each scale: runs of equal values 0, 1, 2, ...
  std::vector<int64_t> pns;
  int64_t begin = 0;
  while (begin < L) {
    const int64_t si = static_cast<int64_t>(pns.size());
    if (p[begin] != si)
      throw Error(str("token ", begin, " has scale ", p[begin], ", expected ", si,
                      " (scales must be 0, 1, 2, ... in blocks)"), what);
    int64_t end = begin;
    while (end < L && p[end] == si) ++end;
    const int64_t n = end - begin;
    const auto pn = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
    if (pn * pn != n)
      throw Error(str("scale ", si, " spans tokens [", begin, ", ", end, "): ", n,
                      " tokens is not a square pn*pn"), what);
    pns.push_back(pn);
    begin = end;
  }
  return pns;
}

VARConfig infer_var_config(const io::StateDict& sd) {
  const std::string what = "VAR checkpoint";
  VARConfig c;
  const auto pos = shape_of(sd, "pos_1LC", what, 3);
  const auto we = shape_of(sd, "word_embed.weight", what, 2);
  const auto ce = shape_of(sd, "class_emb.weight", what, 2);
  const auto hw = shape_of(sd, "head.weight", what, 2);
  c.embed_dim = pos[2];
  c.Cvae = we[1];
  c.vocab_size = hw[0];
  c.num_classes = ce[0] - 1;
  if (we[0] != c.embed_dim || ce[1] != c.embed_dim || hw[1] != c.embed_dim)
    throw Error(str("inconsistent widths: pos_1LC ", c.embed_dim, ", word_embed ", we[0],
                    ", class_emb ", ce[1], ", head ", hw[1]), what);
  if (c.num_classes < 1) throw Error("class_emb.weight must have >= 2 rows", what);
  c.depth = count_contiguous(child_indices(sd, "blocks."), what, "blocks.");
  if (c.depth < 1) throw Error("no transformer blocks (keys blocks.<i>.*)", what);

  c.attn_l2_norm = sd.contains("blocks.0.attn.scale_mul_1H11");
  if (c.attn_l2_norm) {
    c.num_heads = shape_of(sd, "blocks.0.attn.scale_mul_1H11", what, 4)[1];
  } else {
    // Not stored without attn_l2_norm: the official models use 64-wide heads.
    c.num_heads = c.embed_dim % 64 == 0 ? c.embed_dim / 64 : 1;
  }
  const auto fc1 = shape_of(sd, "blocks.0.ffn.fc1.weight", what, 2);
  c.mlp_ratio = static_cast<double>(fc1[0]) / static_cast<double>(c.embed_dim);
  c.shared_aln = sd.contains("shared_ada_lin.1.weight") || sd.contains("blocks.0.ada_gss");

  if (sd.contains("lvl_1L")) {
    c.patch_nums = patch_nums_from_lvl_1L(sd.at("lvl_1L"));
  } else {
    c.patch_nums = {1, 2, 3, 4, 5, 6, 8, 10, 13, 16};
    if (c.L() != pos[1])
      throw Error(str("no lvl_1L buffer and L = ", pos[1],
                      " is not the default 10-scale pyramid (680): patch numbers unknown"), what);
  }
  if (c.L() != pos[1])
    throw Error(str("lvl_1L describes ", c.L(), " tokens but pos_1LC has ", pos[1]), what);
  if (sd.contains("lvl_embed.weight") && sd.at("lvl_embed.weight").size(0) != c.num_scales())
    throw Error(str("lvl_embed.weight has ", sd.at("lvl_embed.weight").size(0),
                    " rows but lvl_1L has ", c.num_scales(), " scales"), what);
  if (sd.contains("pos_start") && sd.at("pos_start").dim() == 3 &&
      sd.at("pos_start").size(1) != c.first_l())
    throw Error(str("pos_start has ", sd.at("pos_start").size(1), " tokens but the first scale has ",
                    c.first_l()), what);

  // Not stored in checkpoints: the official build_vae_var values.
  c.drop_path_rate = 0.1 * static_cast<double>(c.depth) / 24.0;
  c.norm_eps = 1e-6;
  c.cond_drop_rate = 0.1;
  c.validate();
  return c;
}

VQVAEConfig infer_vqvae_config(const io::StateDict& sd, const std::vector<int64_t>& patch_nums) {
  const std::string what = "VQ-VAE checkpoint";
  VQVAEConfig c;
  const auto emb = shape_of(sd, "quantize.embedding.weight", what, 2);
  c.vocab_size = emb[0];
  c.z_channels = emb[1];
  const auto conv_in = shape_of(sd, "encoder.conv_in.weight", what, 4);
  c.ch = conv_in[0];
  c.in_channels = conv_in[1];
  const int64_t levels = count_contiguous(child_indices(sd, "encoder.down."), what, "encoder.down.");
  if (levels < 1) throw Error("no encoder levels (keys encoder.down.<i>.*)", what);
  c.ch_mult.clear();
  for (int64_t i = 0; i < levels; ++i) {
    const auto w = shape_of(sd, str("encoder.down.", i, ".block.0.conv1.weight"), what, 4);
    if (w[0] % c.ch != 0)
      throw Error(str("encoder level ", i, " has ", w[0], " channels, not a multiple of ch=", c.ch),
                  what);
    c.ch_mult.push_back(w[0] / c.ch);
  }
  c.num_res_blocks = count_contiguous(child_indices(sd, "encoder.down.0.block."), what,
                                      "encoder.down.0.block.");
  c.using_sa = sd.contains(str("encoder.down.", levels - 1, ".attn.0.qkv.weight"));
  c.using_mid_sa = sd.contains("encoder.mid.attn_1.qkv.weight");
  c.quant_conv_ks = shape_of(sd, "quant_conv.weight", what, 4)[2];
  const auto z = shape_of(sd, "encoder.conv_out.weight", what, 4);
  if (z[0] != c.z_channels)
    throw Error(str("encoder.conv_out has ", z[0], " output channels but the codebook has Cvae=",
                    c.z_channels), what);

  const auto partial = child_indices(sd, "quantize.quant_resi.qresi_ls.");
  const auto nonshared = child_indices(sd, "quantize.quant_resi.");
  c.default_qresi_counts = 0;
  if (sd.contains("quantize.quant_resi.qresi.weight")) {
    c.share_quant_resi = 1;
  } else if (!partial.empty()) {
    c.share_quant_resi = count_contiguous(partial, what, "quantize.quant_resi.qresi_ls.");
  } else if (!nonshared.empty()) {
    c.share_quant_resi = 0;
    c.default_qresi_counts = count_contiguous(nonshared, what, "quantize.quant_resi.");
  } else {
    c.quant_resi = 0.0;  // every Phi is the identity
  }

  int64_t sn = 0;
  if (sd.contains("quantize.ema_vocab_hit_SV")) sn = sd.at("quantize.ema_vocab_hit_SV").size(0);
  if (!patch_nums.empty()) {
    c.v_patch_nums = patch_nums;
  } else if (sn == 0 || sn == 10) {
    c.v_patch_nums = {1, 2, 3, 4, 5, 6, 8, 10, 13, 16};
  } else {
    c.v_patch_nums.clear();  // unknown: the VAR checkpoint supplies them
  }
  if (c.share_quant_resi == 0 && c.default_qresi_counts == static_cast<int64_t>(c.v_patch_nums.size()))
    c.default_qresi_counts = 0;  // one Phi per scale, the official default
  if (!c.v_patch_nums.empty()) c.validate();
  return c;
}

void load_strict(torch::nn::Module& m, const io::StateDict& sd, const std::string& what) {
  const std::string kEma = "quantize.ema_vocab_hit_SV";
  auto expected = io::module_shapes(m);
  for (auto& [key, shape] : expected) {
    // As the official VQVAE.load_state_dict: another number of scales is not an error.
    if (key == kEma && sd.contains(key) && sd.at(key).dim() == 2 &&
        sd.at(key).size(1) == (shape.size() == 2 ? shape[1] : -1)) {
      shape = std::vector<int64_t>(sd.at(key).sizes().begin(), sd.at(key).sizes().end());
    }
  }
  io::check_keys_and_shapes(sd, expected, what);
  torch::NoGradGuard no_grad;
  auto params = m.named_parameters(true);
  auto buffers = m.named_buffers(true);
  for (const auto& [key, shape] : expected) {
    torch::Tensor* dst = params.find(key);
    if (!dst) dst = buffers.find(key);
    const torch::Tensor& src = sd.at(key);
    if (dst->sizes() != src.sizes()) continue;  // the tolerated ema_vocab_hit_SV case
    dst->copy_(src.to(dst->scalar_type()));
  }
}

LoadedModels load_vae_var(const std::string& vae_path, const std::string& var_path,
                          const torch::Device& device) {
  LoadedModels out;
  VARConfig vc;
  {
    const io::StateDict sd = io::load_state_dict(var_path);
    if (detect_checkpoint_kind(sd) != CheckpointKind::var)
      throw Error("not a VAR state dict (no word_embed/pos_1LC/head)", var_path);
    try {
      vc = infer_var_config(sd);
    } catch (const Error& e) {
      throw Error(e.what(), var_path);
    }
    out.var = VAR(vc);
    load_strict(*out.var, sd, "VAR checkpoint " + var_path);
  }
  {
    const io::StateDict sd = io::load_state_dict(vae_path);
    if (detect_checkpoint_kind(sd) != CheckpointKind::vqvae)
      throw Error("not a VQ-VAE state dict (no quantize.embedding/encoder)", vae_path);
    VQVAEConfig qc;
    try {
      qc = infer_vqvae_config(sd, vc.patch_nums);
    } catch (const Error& e) {
      throw Error(e.what(), vae_path);
    }
    if (qc.vocab_size != vc.vocab_size || qc.z_channels != vc.Cvae)
      throw Error(str("VQ-VAE has V=", qc.vocab_size, ", Cvae=", qc.z_channels, " but the VAR ",
                      var_path, " expects V=", vc.vocab_size, ", Cvae=", vc.Cvae), vae_path);
    out.vae = VQVAE(qc);
    load_strict(*out.vae, sd, "VQ-VAE checkpoint " + vae_path);
  }
  out.var->eval();
  out.vae->eval();
  for (auto& p : out.vae->parameters()) p.set_requires_grad(false);
  out.var->to(device);
  out.vae->to(device);
  return out;
}

torch::Device resolve_device(const std::string& name) {
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  try {
    torch::Device d(name);
    if (d.is_cuda() && !torch::cuda::is_available())
      throw UsageError(str("device '", name, "' requested but CUDA is not available"), "--device");
    if (!d.is_cpu() && !d.is_cuda()) throw UsageError(str("unsupported device '", name, "'"), "--device");
    return d;
  } catch (const c10::Error&) {
    throw UsageError(str("unknown device '", name, "' (auto, cpu, cuda, cuda:N)"), "--device");
  }
}

torch::Tensor to_uint8_hwc(const torch::Tensor& images01) {
  VARDP_CHECK(images01.dim() == 4 && images01.size(1) == 3, "to_uint8_hwc: expected (B, 3, H, W), got ",
              images01.sizes());
  return images01.detach().to(torch::kCPU, torch::kFloat).mul(255).round().clamp(0, 255)
      .to(torch::kByte).permute({0, 2, 3, 1}).contiguous();
}

}  // namespace vardp::model
