// Training checkpoints (checkpoint-<step>.h5, format "vardp.checkpoint", version 2): everything a
// resumed run needs to continue bit-identically. All randomness of a run comes from counter-based
// streams keyed by (seed, purpose, step, example, view) (public streams) and by (run secret,
// purpose, step, position) (the DP noise and lots), so the step count, the seed and the run
// secret ARE the state of every random stream and of the data position. Checkpoints are PRIVATE
// run state (docs/privacy.md): they hold optimizer moments and non-private diagnostics.
//
// Layout:
//   root attributes  provenance (config_toml = resolved config, world_size), step (completed
//                    optimizer steps), planned_steps, seed, method, base_vae, base_var (paths),
//                    base_var_sha256 (empty for a random initialisation), num_classes,
//                    noise_multiplier, sample_rate (DP runs), optimizer_steps, total_flops,
//                    wall_seconds, non_private (string list: the attributes above that are
//                    diagnostics of private data, not covered by DP), version 2 on:
//                    secret_source ("generated" | "supplied"; "" without DP) and
//                    secret_fingerprint (RunSecret::fingerprint, to check secret.key on resume)
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
inline constexpr int64_t kCheckpointFormatVersion = 2;

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
  std::string secret_source;       // DP runs; empty in version-1 checkpoints (coins keyed by seed)
  std::string secret_fingerprint;
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
