// The release boundary (ARCHITECTURE invariants 4, 5, 6): what every RELEASABLE file says about
// the privacy of the model it came from. Releasable files are what a user publishes and what the
// adversary is assumed to read in full: the merged model (`vardp merge`), samples.h5 and its
// shards (`vardp sample --run`), the output of `vardp sample --var`, eval.h5 (`vardp eval`) and a
// run's flops.h5. Private run state (secret.key, checkpoints, metrics.h5, logs, DONE) is not.
//
// Privacy argument: the DP guarantee of a run covers the trained tensors (the output of the
// accounted mechanism) and whatever is computed from them and public data (post-processing).
// A releasable file may therefore hold (a) the model or what it generates, (b) public operator
// metadata and the config, (c) quantities fixed before training from public inputs (N, q, sigma,
// planned steps, planned FLOPs), and (d) the ledger itself. It must hold nothing else computed
// from the private data (invariant 5: losses, norms, clip fractions, realised lot sizes, step
// or wall times, hashes of the data) and never the run's secret coins (invariant 6). The stamp
// below states the guarantee; docs/file-formats.md lists every attribute of every releasable file.
//
// Root attributes written by write_release_privacy (all releasable files):
//   privacy_source  string   "run": from the training checkpoint the model was rebuilt from;
//                            "inherited": copied from the input file that carried it (a merged
//                            model, a samples file); "unknown": the model's origin is not a
//                            stamped vardp output, so no claim is made
//   dp_enabled      int64    1 DP-SGD, 0 non-private training; ABSENT when unknown
//   epsilon         float64  spent epsilon at `delta` (a proven upper bound); +inf for a
//                            non-private run and for unknown provenance (no guarantee)
//   delta           float64  the ledger's target delta; 1.0 with epsilon = +inf (the trivially
//                            true statement: every mechanism is (inf, 1)-DP)
//   accountant      string   the accountant behind epsilon (rdp | prv); "none" without a guarantee
// and, for DP runs only, the group /privacy: dp::PrivacyLedger::save with the spent epsilon
// (format vardp.privacy_ledger; segments of (q, sigma, steps), total_steps, delta, accountant).
// A non-private run gets no /privacy group: an empty ledger would read as epsilon = 0.
#pragma once
#include <hdf5.h>

#include <optional>
#include <string>

#include "vardp/dp/accountant.hpp"
#include "vardp/dp/ledger.hpp"

namespace vardp::train {

struct ReleasePrivacy {
  enum class Source { run, inherited, unknown };
  Source source = Source::unknown;
  bool dp_enabled = false;                  // meaningless when source == unknown
  std::optional<dp::PrivacyLedger> ledger;  // set iff dp_enabled

  // The model of a training run: `ledger` is CheckpointData::ledger (absent: non-DP run).
  static ReleasePrivacy of_run(const std::optional<dp::PrivacyLedger>& ledger);
  static ReleasePrivacy unknown() { return ReleasePrivacy{}; }
};

// The privacy stamp of `path` as the input of another releasable file: a stamped vardp HDF5
// output gives its ledger (source "inherited"); anything else (a .pth, a vardp file without the
// stamp, a plain h5py file, a stamp saying "unknown") gives unknown. Throws vardp::Error for a
// stamp that contradicts itself (dp_enabled = 1 without a /privacy ledger).
ReleasePrivacy read_release_privacy(const std::string& path);

// The epsilon a releasable file states for a DP ledger: by the ledger's own accountant when that
// gives a proven upper bound, else (gdp, a CLT approximation; or a PRV breakdown) by RDP, which
// always does. An empty ledger (no private step yet) spent 0. Throws vardp::Error for a ledger
// without a target delta.
dp::EpsilonReport release_epsilon(const dp::PrivacyLedger& ledger);

// Writes the root attributes and (DP) the /privacy group above into an open output file.
void write_release_privacy(hid_t file, const ReleasePrivacy& privacy);

}  // namespace vardp::train
