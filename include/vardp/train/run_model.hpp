// The models of a training run: the frozen VQ-VAE and the VAR as [model] describes them (a
// published/vardp checkpoint, or a random initialisation for pre-training), and the adapted VAR
// of a finished or interrupted run rebuilt from its config and a checkpoint (vardp merge,
// vardp sample --run).
#pragma once
#include <optional>
#include <string>

#include "vardp/config/config.hpp"
#include "vardp/dp/ledger.hpp"
#include "vardp/model/var.hpp"
#include "vardp/model/vqvae.hpp"
#include "vardp/train/adaptation.hpp"

namespace vardp::train {

struct RunModels {
  model::VQVAE vae{nullptr};  // null in a dry run without a VQ-VAE file
  model::VAR var{nullptr};
  bool random_init = false;  // the VAR was initialised from the seed (no model.var file)
};

bool file_exists(const std::string& path);
std::string file_sha256(const std::string& path);

// Loads the VQ-VAE (frozen, eval) and the base VAR; with model.var empty the VAR is initialised
// as the official init_weights from the run's seed (the same on every rank). In a dry run,
// missing files are tolerated: the VAR is then built from model.depth with random weights.
RunModels build_run_models(const config::Config& cfg, bool dry_run = false);

// Base models + adaptation + the trained tensors of `checkpoint` (a checkpoint-<step>.h5 of a
// run with this config), on the CPU in eval mode. Checks the base VAR's SHA-256 against the one
// the checkpoint recorded and throws on a mismatch.
struct TrainedModel {
  RunModels models;
  AdaptationReport adaptation;
  int64_t step = 0;
  // The checkpoint's privacy ledger (absent: a non-DP run): what every file released from this
  // model states (train/release.hpp, invariant 4).
  std::optional<dp::PrivacyLedger> ledger;
};
TrainedModel load_trained_model(const config::Config& cfg, const std::string& checkpoint);

// The checkpoint `latest` of a run directory names (throws if there is none).
std::string latest_checkpoint(const std::string& run_dir);

}  // namespace vardp::train
