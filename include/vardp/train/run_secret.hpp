// Where a DP run's secret comes from and where it lives (docs/privacy.md; invariant 6: the
// mechanism's coins are keyed by a per-run secret kept in private run state).
#pragma once
#include <string>

#include "vardp/dist/comm.hpp"
#include "vardp/dp/secret_coins.hpp"

namespace vardp::train {

inline constexpr const char* kSecretFileName = "secret.key";

struct RunSecretInfo {
  dp::RunSecret secret;
  std::string source;  // "generated" (this run's own, from getrandom) | "supplied" (dp.secret_file)
  std::string path;    // the file it was read from or written to
};

// Collective over `comm`: rank 0 establishes the secret and broadcasts it; an error on rank 0
// is raised on every rank (CollectiveError).
//  * `secret_file` non-empty: the pinned key of that file ("supplied"); nothing is written.
//  * else <run_dir>/secret.key if it exists: the same run resumed or restarted, so replayed
//    steps reuse their lots and noise (invariant 4);
//  * else, only when `may_create`: a fresh secret from getrandom, written atomically to
//    <run_dir>/secret.key with mode 0600 before the first step ("generated").
// `may_create` is false when the run has checkpoints: their steps were drawn with a secret that
// must not silently change.
RunSecretInfo establish_run_secret(dist::Comm& comm, const std::string& secret_file, const std::string& run_dir,
                                   bool may_create);

// Reads a secret file (64 hex digits); warns when its mode lets others read it.
dp::RunSecret read_secret_file(const std::string& path);

}  // namespace vardp::train
