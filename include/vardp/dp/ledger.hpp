// The privacy ledger of a run: every DP-SGD step that touched private data, as a list of
// (sample_rate, noise_multiplier, steps) segments, plus the run's target delta and accountant.
// It lives in every checkpoint and output file (ARCHITECTURE invariant 4). Pure C++ + HDF5 C API.
//
// Privacy argument: steps compose adaptively, so the spent epsilon is that of the heterogeneous
// composition of all recorded segments, computed by any accountant in accountant.hpp. The ledger
// only ever grows (resumed or replayed steps are added again), so epsilon never under-counts.
//
// HDF5 layout (a group, e.g. /privacy in a checkpoint):
//   attributes  format = "vardp.privacy_ledger", format_version = 1 (int64),
//               accountant (string: rdp | prv | gdp), delta (double; absent if unset),
//               num_segments (int64), total_steps (int64),
//               optional epsilon / epsilon_accountant / epsilon_delta: the spent epsilon when saved
//   datasets    sample_rate [n] float64, noise_multiplier [n] float64, steps [n] int64
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vardp/dp/accountant.hpp"

namespace vardp::dp {

inline constexpr const char* kLedgerFormat = "vardp.privacy_ledger";
inline constexpr int64_t kLedgerFormatVersion = 1;

class PrivacyLedger {
 public:
  PrivacyLedger() = default;
  PrivacyLedger(double delta, AccountantKind accountant) { set_target(delta, accountant); }

  // Records `steps` more steps at (q, sigma); merged into the last segment when q and sigma are
  // bit-identical (like Opacus' accountant history). steps == 0 records nothing.
  void add_steps(double sample_rate, double noise_multiplier, int64_t steps = 1);
  void add_segment(const Segment& segment);
  void append(const PrivacyLedger& other);  // other's segments after ours (targets unchanged)

  const std::vector<Segment>& segments() const { return segments_; }
  int64_t total_steps() const;
  bool empty() const { return segments_.empty(); }

  void set_target(double delta, AccountantKind accountant);
  const std::optional<double>& delta() const { return delta_; }
  AccountantKind accountant() const { return accountant_; }

  // Spent epsilon at `delta` under `accountant` (PrvBreakdownError where PRV gives no bound).
  EpsilonReport epsilon(double delta, AccountantKind accountant,
                        const AccountantOptions& options = {}) const;
  // At the stored target; throws vardp::Error when no delta was set.
  EpsilonReport epsilon(const AccountantOptions& options = {}) const;

  // Writes the ledger into group `path` under `loc` (replacing an existing one). `spent`, if
  // given, is stored as informational epsilon attributes.
  void save(hid_t loc, const std::string& path, const EpsilonReport* spent = nullptr) const;
  // Reads and validates a ledger group (format, version, lengths, values, step total).
  static PrivacyLedger load(hid_t loc, const std::string& path);

  bool operator==(const PrivacyLedger& o) const {
    return segments_ == o.segments_ && delta_ == o.delta_ && accountant_ == o.accountant_;
  }
  bool operator!=(const PrivacyLedger& o) const { return !(*this == o); }

 private:
  std::vector<Segment> segments_;
  std::optional<double> delta_;
  AccountantKind accountant_ = AccountantKind::rdp;
};

}  // namespace vardp::dp
