// Privacy ledger: segment bookkeeping and HDF5 (de)serialisation (see ledger.hpp).
#include "vardp/dp/ledger.hpp"

#include "vardp/io/h5.hpp"
#include "vardp/util/error.hpp"

namespace vardp::dp {

void PrivacyLedger::add_steps(double sample_rate, double noise_multiplier, int64_t steps) {
  add_segment(Segment{sample_rate, noise_multiplier, steps});
}

void PrivacyLedger::add_segment(const Segment& s) {
  validate_segment(s, "privacy ledger");
  if (s.steps == 0) return;
  if (!segments_.empty() && segments_.back().sample_rate == s.sample_rate &&
      segments_.back().noise_multiplier == s.noise_multiplier) {
    segments_.back().steps += s.steps;
    return;
  }
  segments_.push_back(s);
}

void PrivacyLedger::append(const PrivacyLedger& other) {
  for (const auto& s : other.segments_) add_segment(s);
}

int64_t PrivacyLedger::total_steps() const {
  int64_t total = 0;
  for (const auto& s : segments_) total += s.steps;
  return total;
}

void PrivacyLedger::set_target(double delta, AccountantKind accountant) {
  validate_delta(delta, "privacy ledger target");
  delta_ = delta;
  accountant_ = accountant;
}

EpsilonReport PrivacyLedger::epsilon(double delta, AccountantKind accountant,
                                     const AccountantOptions& options) const {
  return compute_epsilon(segments_, delta, accountant, options);
}

EpsilonReport PrivacyLedger::epsilon(const AccountantOptions& options) const {
  if (!delta_) throw Error("the ledger has no target delta", "privacy ledger");
  return epsilon(*delta_, accountant_, options);
}

void PrivacyLedger::save(hid_t loc, const std::string& path, const EpsilonReport* spent) const {
  if (io::h5_exists(loc, path) && H5Ldelete(loc, path.c_str(), H5P_DEFAULT) < 0) {
    throw Error("cannot replace the existing ledger group", path);
  }
  io::H5Handle group = io::h5_require_group(loc, path);
  const hid_t g = group.id();
  io::h5_write_attr(g, "format", kLedgerFormat);
  io::h5_write_attr(g, "format_version", kLedgerFormatVersion);
  io::h5_write_attr(g, "accountant", to_string(accountant_));
  if (delta_) io::h5_write_attr(g, "delta", *delta_);
  io::h5_write_attr(g, "num_segments", static_cast<int64_t>(segments_.size()));
  io::h5_write_attr(g, "total_steps", total_steps());
  std::vector<double> q, sigma;
  std::vector<int64_t> steps;
  for (const auto& s : segments_) {
    q.push_back(s.sample_rate);
    sigma.push_back(s.noise_multiplier);
    steps.push_back(s.steps);
  }
  const std::vector<hsize_t> dims{static_cast<hsize_t>(segments_.size())};
  io::h5_write<double>(g, "sample_rate", q, dims);
  io::h5_write<double>(g, "noise_multiplier", sigma, dims);
  io::h5_write<int64_t>(g, "steps", steps, dims);
  if (spent) {
    io::h5_write_attr(g, "epsilon", spent->epsilon);
    io::h5_write_attr(g, "epsilon_accountant", to_string(spent->accountant));
    io::h5_write_attr(g, "epsilon_delta", spent->delta);
  }
}

PrivacyLedger PrivacyLedger::load(hid_t loc, const std::string& path) {
  if (!io::h5_exists(loc, path)) throw Error("no privacy ledger group", path);
  io::H5Handle group = io::h5_open_group(loc, path);
  const hid_t g = group.id();
  if (!io::h5_has_attr(g, "format") || io::h5_read_attr_string(g, "format") != kLedgerFormat) {
    throw Error(str("not a privacy ledger (format attribute must be '", kLedgerFormat, "')"), path);
  }
  const int64_t version = io::h5_read_attr_int(g, "format_version");
  if (version < 1 || version > kLedgerFormatVersion) {
    throw Error(str("unsupported ledger format_version ", version, " (this build reads <= ",
                    kLedgerFormatVersion, ")"),
                path);
  }
  const auto q = io::h5_read<double>(g, "sample_rate");
  const auto sigma = io::h5_read<double>(g, "noise_multiplier");
  const auto steps = io::h5_read<int64_t>(g, "steps");
  if (q.size() != sigma.size() || q.size() != steps.size()) {
    throw Error(str("ledger datasets differ in length (", q.size(), ", ", sigma.size(), ", ",
                    steps.size(), ")"),
                path);
  }
  PrivacyLedger ledger;
  for (std::size_t i = 0; i < q.size(); ++i) {
    const Segment s{q[i], sigma[i], steps[i]};
    validate_segment(s, str(path, " segment ", i));
    ledger.segments_.push_back(s);  // verbatim: no re-merging of what was stored
  }
  if (io::h5_has_attr(g, "total_steps") &&
      io::h5_read_attr_int(g, "total_steps") != ledger.total_steps()) {
    throw Error(str("ledger total_steps attribute ", io::h5_read_attr_int(g, "total_steps"),
                    " != sum of segment steps ", ledger.total_steps()),
                path);
  }
  const std::string accountant = io::h5_read_attr_string(g, "accountant");
  if (accountant != "rdp" && accountant != "prv" && accountant != "gdp") {
    throw Error(str("unknown accountant '", accountant, "' in ledger"), path);
  }
  ledger.accountant_ = parse_accountant(accountant);
  if (io::h5_has_attr(g, "delta")) {
    const double delta = io::h5_read_attr_double(g, "delta");
    validate_delta(delta, path + " delta");
    ledger.delta_ = delta;
  }
  return ledger;
}

}  // namespace vardp::dp
