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

#include "vardp/dp/ledger.hpp"
#include "vardp/io/provenance.hpp"

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

// Training cost (flops.h5, format "vardp.flops", version 1): analytic FLOPs and wall time per
// phase. The totals are carried in checkpoints, so a resumed run's file covers all segments.
struct FlopsTally {
  double total_flops = 0;                       // all ranks, all steps
  double wall_seconds = 0;                      // training wall time, all segments
  std::map<std::string, double> phase_seconds;  // rank 0
  std::vector<std::pair<int64_t, double>> step_flops;
};
void write_flops(const std::string& path, const io::Provenance& provenance, const FlopsTally& tally,
                 const std::map<std::string, int64_t>& attrs_int,
                 const std::map<std::string, std::string>& attrs_string);

}  // namespace vardp::train
