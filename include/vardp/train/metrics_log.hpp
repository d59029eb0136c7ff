// The run's metric time series (metrics.h5). Rows are kept in memory and the file is rewritten
// atomically at every checkpoint and at the end, so metrics.h5 always matches a checkpoint and a
// killed job never leaves a torn file (invariant 7); rows after the last checkpoint are
// recomputed on resume. Rank 0 only.
//
// Layout (format "vardp.metrics", version 1; provenance root attributes, plus the run's
// attributes given to write()): /metrics/<name>/step int64 (n), /metrics/<name>/value float64 (n)
// for every series (the layout of io::TimeSeriesWriter).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "vardp/config/config.hpp"
#include "vardp/dp/ledger.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/model/var.hpp"
#include "vardp/model/vqvae.hpp"
#include "vardp/profile/training_flops.hpp"
#include "vardp/train/work_split.hpp"

namespace vardp::train {

inline constexpr const char* kMetricsFormat = "vardp.metrics";

class MetricsLog {
 public:
  void add(const std::string& name, int64_t step, double value);
  // Keeps rows with step <= `step` (resume from a checkpoint of that step).
  void truncate_after(int64_t step);
  const std::map<std::string, std::vector<std::pair<int64_t, double>>>& series() const { return series_; }

  // Writes every series to `path` atomically. The attribute maps become root attributes
  // (method, dp_enabled, epsilon target, ...); a DP run's ledger goes to /privacy.
  void write(const std::string& path, const io::Provenance& provenance, const std::map<std::string, int64_t>& attrs_int,
             const std::map<std::string, double>& attrs_double, const std::map<std::string, std::string>& attrs_string,
             const std::map<std::string, std::vector<std::string>>& attrs_strings,
             const dp::PrivacyLedger* ledger) const;
  // Reads a metrics.h5 written by write() (resume).
  static MetricsLog read(const std::string& path);

 private:
  std::map<std::string, std::vector<std::pair<int64_t, double>>> series_;
};

// Training cost (flops.h5, format "vardp.flops", version 1; docs/formats/run.md): the FLOPs of
// every step by the analytic model of `vardp profile` (profile/training_flops.hpp): the paper's
// count (VQ-VAE tokenisation + VAR forward + backward) apart from the DP extras and the optimizer,
// plus, for non-private runs only, wall time per phase. The paper's total is carried in
// checkpoints and the per-step rows are restored from flops.h5 on resume, so a resumed run's file
// covers all its segments.
//
// flops.h5 is RELEASABLE (train/release.hpp): for a DP run the tally must hold PLANNED FLOPs only
// (from the expected lot size q*N, never the realised one), and no time is written, since step
// and wall times grow with the realised lot sizes (invariant 5).
struct FlopsTally {
  struct Step {
    int64_t step = 0;  // 1-based optimizer step
    double rows = 0, tokenize = 0, forward = 0, backward = 0, dp_extra = 0, optimizer = 0;
    double total() const { return tokenize + forward + backward; }
  };
  double total_flops = 0;                       // the paper's count, all ranks, all steps
  double wall_seconds = 0;                      // training wall time, all segments
  std::map<std::string, double> phase_seconds;  // rank 0
  std::vector<Step> steps;                      // one row per step
  profile::StepFlops last;                      // the module breakdown of the latest step

  void add_step(int64_t step, const profile::StepFlops& flops);
  // On resume at `step`: keeps the rows of `previous` (read_flops_steps) up to it.
  void restore_steps(const std::vector<Step>& previous, int64_t step);
};
// The per-step rows of a flops.h5 (empty when it has none).
std::vector<FlopsTally::Step> read_flops_steps(const std::string& path);
// `ledger`: the run's privacy ledger for a DP run, nullptr for a plain one. With a ledger the file
// gets no wall_seconds / achieved_tflops / phase_seconds and carries the ledger and the spent
// epsilon (train::write_release_privacy); without one it is stamped non-private (epsilon = +inf).
void write_flops(const std::string& path, const io::Provenance& provenance, const FlopsTally& tally,
                 const std::map<std::string, int64_t>& attrs_int,
                 const std::map<std::string, std::string>& attrs_string, const dp::PrivacyLedger* ledger);

// The FLOP model of training `var` (adapted: requires_grad marks what trains) as `cfg` runs it:
// its VQ-VAE (`vae`), token cache or not, the optimizer with the trainer's weight-decay rule and,
// for DP runs, the per-example-gradient strategy the DP engine uses.
profile::TrainingFlopModel training_flop_model(const config::Config& cfg, const model::VARImpl& var,
                                               const model::VQVAEConfig& vae);

// The micro-batches of one training step over all ranks, as the trainer runs them: the units of
// work_split.hpp (a DP lot of `examples` examples with `views` views each, or a plain batch), cut
// into chunks of `micro_batch` units on each rank. The input of profile::TrainingFlopModel::step.
profile::StepShape step_shape(int64_t examples, int64_t views, bool dp, const RankLayout& layout, int64_t micro_batch);

}  // namespace vardp::train
