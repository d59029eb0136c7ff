// Training checkpoints (checkpoint-<step>.h5, format "vardp.checkpoint", version 1): everything a
// resumed run needs to continue bit-identically. All randomness of a run comes from counter-based
// streams keyed by (seed, purpose, step, example, view), so the step count and the seed ARE the
// state of every random stream and of the data position.
//
// Layout:
//   root attributes  provenance (config_toml = resolved config, world_size), step (completed
//                    optimizer steps), planned_steps, seed, method, base_vae, base_var (paths),
//                    base_var_sha256 (empty for a random initialisation), num_classes,
//                    noise_multiplier, sample_rate (DP runs), optimizer_steps, total_flops,
//                    wall_seconds
//   /trainable       state-dict group (state_dict.hpp layout): the trained tensors only (PEFT
//                    checkpoints stay small; the base is referenced by path + SHA-256)
//   /optimizer/<moment>  one state-dict group per optimizer moment, keyed by parameter name:
//                    exp_avg and exp_avg_sq (AdamW) or momentum (SGD)
//   /privacy         the privacy ledger (dp/ledger.hpp), DP runs only
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "vardp/dp/ledger.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/io/state_dict.hpp"

namespace vardp::train {

inline constexpr const char* kCheckpointFormat = "vardp.checkpoint";

struct CheckpointData {
  int64_t step = 0;
  int64_t planned_steps = 0;
  int64_t seed = 0;
  std::string method;
  std::string base_vae, base_var, base_var_sha256;
  int64_t num_classes = 0;
  double noise_multiplier = 0.0;
  double sample_rate = 0.0;
  int64_t optimizer_steps = 0;
  double total_flops = 0.0;  // training cost so far (flops.h5 counters)
  double wall_seconds = 0.0;
  io::StateDict trainable;
  std::map<std::string, io::StateDict> optimizer;  // moment -> tensors by parameter name
  std::optional<dp::PrivacyLedger> ledger;
  std::string config_toml;  // read back from the provenance
  int64_t world_size = 1;
};

// Atomic write (temporary name, fsync, rename).
void save_checkpoint(const std::string& path, const CheckpointData& c, const io::Provenance& provenance);
CheckpointData load_checkpoint(const std::string& path);

}  // namespace vardp::train
