// Building the models of a run, and rebuilding a trained one from its checkpoint.
#include "vardp/train/run_model.hpp"

#include <sys/stat.h>
#include <torch/torch.h>

#include <fstream>
#include <set>

#include "vardp/data/sha256.hpp"
#include "vardp/io/state_dict.hpp"
#include "vardp/model/infer.hpp"
#include "vardp/model/init_control.hpp"
#include "vardp/train/checkpoint.hpp"
#include "vardp/train/checkpoint_dir.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"
#include "vardp/util/rng.hpp"

namespace vardp::train {

bool file_exists(const std::string& path) {
  struct stat st {};
  return !path.empty() && ::stat(path.c_str(), &st) == 0;
}

std::string file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  VARDP_CHECK(in, "cannot read ", path);
  data::Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return h.hex_digest();
}

namespace {

// The official drop-path default unless the config sets one.
double drop_path_rate(const config::ModelConfig& m, int64_t depth) {
  return m.drop_path_rate >= 0 ? m.drop_path_rate : 0.1 * static_cast<double>(depth) / 24.0;
}

}  // namespace

RunModels build_run_models(const config::Config& cfg, bool dry_run) {
  RunModels out;
  const auto& mc = cfg.model;
  int64_t vocab = 4096, cvae = 32;
  if (file_exists(mc.vae)) {
    const io::StateDict sd = io::load_state_dict(mc.vae);
    if (model::detect_checkpoint_kind(sd) != model::CheckpointKind::vqvae)
      throw Error("not a VQ-VAE state dict", mc.vae);
    model::VQVAEConfig qc = model::infer_vqvae_config(sd, mc.patch_nums);
    out.vae = model::VQVAE(qc);
    model::load_strict(*out.vae, sd, "VQ-VAE checkpoint " + mc.vae);
    out.vae->eval();
    for (auto& p : out.vae->parameters()) p.set_requires_grad(false);
    vocab = qc.vocab_size;
    cvae = qc.z_channels;
  } else if (!dry_run) {
    throw UsageError(mc.vae.empty() ? "model.vae is required (the frozen VQ-VAE tokenizer)"
                                    : "VQ-VAE checkpoint not found: " + mc.vae,
                     "model.vae");
  }

  if (file_exists(mc.var)) {
    const io::StateDict sd = io::load_state_dict(mc.var);
    if (model::detect_checkpoint_kind(sd) != model::CheckpointKind::var) throw Error("not a VAR state dict", mc.var);
    model::VARConfig vc = model::infer_var_config(sd);
    vc.drop_path_rate = drop_path_rate(mc, vc.depth);
    vc.cond_drop_rate = mc.cond_drop_rate;
    if (out.vae && (vc.vocab_size != vocab || vc.Cvae != cvae))
      throw Error(
          str("VAR expects V=", vc.vocab_size, ", Cvae=", vc.Cvae, " but the VQ-VAE has V=", vocab, ", Cvae=", cvae),
          mc.var);
    out.var = model::VAR(vc);
    model::load_strict(*out.var, sd, "VAR checkpoint " + mc.var);
  } else {
    if (!mc.var.empty() && !dry_run) throw UsageError("VAR checkpoint not found: " + mc.var, "model.var");
    if (!mc.var.empty()) log::warn("dry run: ", mc.var, " not found; building a randomly initialised VAR-d", mc.depth);
    model::VARConfig vc = model::VARConfig::for_depth(mc.depth, mc.num_classes, vocab, cvae, mc.patch_nums);
    vc.drop_path_rate = drop_path_rate(mc, vc.depth);
    vc.cond_drop_rate = mc.cond_drop_rate;
    vc.attn_l2_norm = mc.attn_l2_norm;
    vc.shared_aln = mc.shared_aln;
    // Every rank draws the same initial weights from the run's seed.
    torch::manual_seed(rng::Stream(static_cast<uint64_t>(cfg.train.seed), rng::Purpose::init, 0).derive_seed());
    if (dry_run) {
      model::SkipInitScope shapes_only;  // a dry run only needs the shapes
      out.var = model::VAR(vc);
    } else {
      out.var = model::VAR(vc);
      out.var->init_weights();
    }
    out.random_init = true;
  }
  if (out.vae && out.vae->config().image_size() != cfg.data.image_size)
    throw UsageError(str("the VQ-VAE makes ", out.vae->config().image_size(), " px images (patch_nums ",
                         "and down-sampling) but data.image_size is ", cfg.data.image_size),
                     "data.image_size");
  return out;
}

TrainedModel load_trained_model(const config::Config& cfg, const std::string& checkpoint) {
  TrainedModel t;
  CheckpointData c = load_checkpoint(checkpoint);
  if (!c.base_var_sha256.empty()) {
    const std::string now = file_sha256(cfg.model.var);
    if (now != c.base_var_sha256)
      throw Error(str("the base VAR ", cfg.model.var, " has SHA-256 ", now, " but the run was trained from ",
                      c.base_var_sha256),
                  checkpoint);
  }
  t.models = build_run_models(cfg, false);
  t.adaptation = adapt_var(*t.models.var, cfg.adapt, static_cast<uint64_t>(cfg.train.seed));
  const std::set<std::string> trained(t.adaptation.trainable.begin(), t.adaptation.trainable.end());
  torch::NoGradGuard no_grad;
  int64_t loaded = 0;
  for (auto& item : t.models.var->named_parameters(true)) {
    if (!trained.count(item.key())) continue;
    VARDP_CHECK(c.trainable.contains(item.key()), checkpoint, " has no trained tensor '", item.key(), "'");
    const torch::Tensor& src = c.trainable.at(item.key());
    VARDP_CHECK(src.sizes() == item.value().sizes(), checkpoint, ": '", item.key(), "' has shape ", src.sizes(),
                ", the model expects ", item.value().sizes());
    item.value().copy_(src);
    ++loaded;
  }
  VARDP_CHECK(loaded == static_cast<int64_t>(c.trainable.size()), checkpoint, " holds ", c.trainable.size(),
              " trained tensors, the config's adaptation trains ", loaded);
  for (auto& p : t.models.var->parameters()) p.set_requires_grad(false);
  t.models.var->eval();
  t.step = c.step;
  t.ledger = std::move(c.ledger);
  if (t.ledger && c.secret_source.empty()) {
    // A format-1 checkpoint: its noise and lots were keyed by the public train.seed, so anyone
    // with its config can regenerate them (invariant 6): its ledger's epsilon is not a
    // guarantee, and releases of it must not state one.
    log::warn(checkpoint, " predates secret coins (its DP noise was keyed by the public train.seed): files made "
              "from it claim no DP guarantee (epsilon = inf)");
    t.ledger.reset();
  }
  return t;
}

std::string latest_checkpoint(const std::string& run_dir) {
  CheckpointDir dir(run_dir, 1);
  auto latest = dir.latest();
  if (!latest) throw Error("no checkpoint (no `latest` marker)", run_dir);
  return *latest;
}

}  // namespace vardp::train
