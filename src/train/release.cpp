// The privacy stamp of releasable files (see release.hpp; ARCHITECTURE invariants 4, 5, 6).
#include "vardp/train/release.hpp"

#include <limits>

#include "vardp/dp/prv.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/util/error.hpp"

namespace vardp::train {
namespace {

constexpr const char* kPrivacyGroup = "privacy";

const char* source_name(ReleasePrivacy::Source s) {
  switch (s) {
    case ReleasePrivacy::Source::run: return "run";
    case ReleasePrivacy::Source::inherited: return "inherited";
    case ReleasePrivacy::Source::unknown: return "unknown";
  }
  return "unknown";
}

// (inf, 1): the statement every mechanism satisfies, for files that claim no guarantee.
void write_no_guarantee(hid_t file) {
  io::h5_write_attr(file, "epsilon", std::numeric_limits<double>::infinity());
  io::h5_write_attr(file, "delta", 1.0);
  io::h5_write_attr(file, "accountant", "none");
}

}  // namespace

ReleasePrivacy ReleasePrivacy::of_run(const std::optional<dp::PrivacyLedger>& ledger) {
  ReleasePrivacy p;
  p.source = Source::run;
  p.dp_enabled = ledger.has_value();
  p.ledger = ledger;
  return p;
}

dp::EpsilonReport release_epsilon(const dp::PrivacyLedger& ledger) {
  if (!ledger.delta()) throw Error("a DP ledger without a target delta: no epsilon can be stated", "privacy ledger");
  if (ledger.empty()) {  // no step touched the private data
    dp::EpsilonReport r;
    r.accountant = ledger.accountant();
    r.delta = *ledger.delta();
    r.epsilon = 0.0;
    return r;
  }
  // A releasable file states a proven bound: gdp is an approximation that can under-count, and a
  // PRV breakdown gives no number at all; RDP always bounds the same composition.
  if (dp::is_guarantee(ledger.accountant())) {
    try {
      return ledger.epsilon();
    } catch (const dp::PrvBreakdownError&) {
    }
  }
  return ledger.epsilon(*ledger.delta(), dp::AccountantKind::rdp);
}

ReleasePrivacy read_release_privacy(const std::string& path) {
  // Only a stamped vardp HDF5 output carries a ledger; a .pth or an unstamped file is unknown.
  if (H5Fis_hdf5(path.c_str()) <= 0) return ReleasePrivacy::unknown();
  io::H5File file = io::H5File::open(path);
  const hid_t f = file.id();
  if (!io::h5_has_attr(f, "privacy_source")) return ReleasePrivacy::unknown();
  const std::string source = io::h5_read_attr_string(f, "privacy_source");
  if (source == "unknown") return ReleasePrivacy::unknown();
  if (source != "run" && source != "inherited")
    throw Error(str("unknown privacy_source '", source, "' (expected run, inherited or unknown)"), path);
  if (!io::h5_has_attr(f, "dp_enabled"))
    throw Error(str("privacy_source is '", source, "' but there is no dp_enabled attribute"), path);
  ReleasePrivacy p;
  p.source = ReleasePrivacy::Source::inherited;
  p.dp_enabled = io::h5_read_attr_int(f, "dp_enabled") != 0;
  if (p.dp_enabled) {
    if (!io::h5_exists(f, kPrivacyGroup))
      throw Error("dp_enabled = 1 but the file has no /privacy ledger: its guarantee cannot be carried on", path);
    p.ledger = dp::PrivacyLedger::load(f, kPrivacyGroup);
  }
  return p;
}

void write_release_privacy(hid_t file, const ReleasePrivacy& p) {
  io::h5_write_attr(file, "privacy_source", source_name(p.source));
  if (p.source == ReleasePrivacy::Source::unknown) {
    // dp_enabled stays absent: whether the model was trained privately is not known.
    write_no_guarantee(file);
    return;
  }
  io::h5_write_attr(file, "dp_enabled", static_cast<int64_t>(p.dp_enabled ? 1 : 0));
  if (!p.dp_enabled) {
    write_no_guarantee(file);
    return;
  }
  VARDP_CHECK(p.ledger.has_value(), "write_release_privacy: a DP release needs its ledger");
  const dp::EpsilonReport spent = release_epsilon(*p.ledger);
  io::h5_write_attr(file, "epsilon", spent.epsilon);
  io::h5_write_attr(file, "delta", spent.delta);
  io::h5_write_attr(file, "accountant", dp::to_string(spent.accountant));
  p.ledger->save(file, kPrivacyGroup, &spent);  // invariant 4: the ledger travels with the release
}

}  // namespace vardp::train
