// The privacy stamp of releasable files (train/release.hpp; invariants 4, 5): what each kind of
// model origin writes, what a reader carries on, and the DP flops.h5 without times.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "test_paths.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/train/metrics_log.hpp"
#include "vardp/train/release.hpp"

namespace vardp::train {
namespace {

dp::PrivacyLedger dp_ledger(dp::AccountantKind accountant = dp::AccountantKind::rdp) {
  dp::PrivacyLedger l(1e-5, accountant);
  l.add_steps(0.25, 1.0, 40);
  return l;
}

std::string stamped(const test::ScratchDir& dir, const std::string& name, const ReleasePrivacy& p) {
  const std::string path = dir / name;
  io::H5File f = io::H5File::create(path);
  write_release_privacy(f.id(), p);
  return path;
}

TEST(Release, DpRunCarriesTheLedgerAndTheSpentEpsilon) {
  test::ScratchDir dir;
  const dp::PrivacyLedger ledger = dp_ledger();
  const std::string path = stamped(dir, "dp.h5", ReleasePrivacy::of_run(ledger));
  io::H5File f = io::H5File::open(path);
  EXPECT_EQ(io::h5_read_attr_string(f.id(), "privacy_source"), "run");
  EXPECT_EQ(io::h5_read_attr_int(f.id(), "dp_enabled"), 1);
  const double eps = ledger.epsilon().epsilon;
  EXPECT_EQ(io::h5_read_attr_double(f.id(), "epsilon"), eps);
  EXPECT_EQ(io::h5_read_attr_double(f.id(), "delta"), 1e-5);
  EXPECT_EQ(io::h5_read_attr_string(f.id(), "accountant"), "rdp");
  EXPECT_EQ(dp::PrivacyLedger::load(f.id(), "privacy"), ledger);
  io::H5Handle g = io::h5_open_group(f.id(), "privacy");
  EXPECT_EQ(io::h5_read_attr_double(g.id(), "epsilon"), eps);
  EXPECT_EQ(io::h5_read_attr_int(g.id(), "total_steps"), 40);

  // Carried on by the next release (sample --var of a merged model, eval of samples).
  const ReleasePrivacy read = read_release_privacy(path);
  EXPECT_EQ(read.source, ReleasePrivacy::Source::inherited);
  EXPECT_TRUE(read.dp_enabled);
  ASSERT_TRUE(read.ledger.has_value());
  EXPECT_EQ(*read.ledger, ledger);
}

TEST(Release, NonPrivateRunClaimsNothing) {
  test::ScratchDir dir;
  const std::string path = stamped(dir, "plain.h5", ReleasePrivacy::of_run(std::nullopt));
  io::H5File f = io::H5File::open(path);
  EXPECT_EQ(io::h5_read_attr_int(f.id(), "dp_enabled"), 0);
  EXPECT_EQ(io::h5_read_attr_double(f.id(), "epsilon"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(io::h5_read_attr_double(f.id(), "delta"), 1.0);
  EXPECT_EQ(io::h5_read_attr_string(f.id(), "accountant"), "none");
  // No ledger: an empty one would read as epsilon = 0.
  EXPECT_FALSE(io::h5_exists(f.id(), "privacy"));
  const ReleasePrivacy read = read_release_privacy(path);
  EXPECT_EQ(read.source, ReleasePrivacy::Source::inherited);
  EXPECT_FALSE(read.dp_enabled);
}

TEST(Release, UnknownOriginHasNoDpEnabled) {
  test::ScratchDir dir;
  const std::string path = stamped(dir, "unknown.h5", ReleasePrivacy::unknown());
  io::H5File f = io::H5File::open(path);
  EXPECT_EQ(io::h5_read_attr_string(f.id(), "privacy_source"), "unknown");
  EXPECT_FALSE(io::h5_has_attr(f.id(), "dp_enabled"));
  EXPECT_TRUE(std::isinf(io::h5_read_attr_double(f.id(), "epsilon")));
  EXPECT_EQ(read_release_privacy(path).source, ReleasePrivacy::Source::unknown);

  // Files without a stamp: an HDF5 file, a .pth-like zip, any other bytes.
  const std::string bare = dir / "bare.h5";
  io::H5File::create(bare).close();
  EXPECT_EQ(read_release_privacy(bare).source, ReleasePrivacy::Source::unknown);
  const std::string zip = dir / "model.pth";
  std::ofstream(zip) << "PK\x03\x04 not really a zip";
  EXPECT_EQ(read_release_privacy(zip).source, ReleasePrivacy::Source::unknown);
}

TEST(Release, ContradictoryStampIsAnError) {
  test::ScratchDir dir;
  const std::string path = dir / "bad.h5";
  {
    io::H5File f = io::H5File::create(path);
    io::h5_write_attr(f.id(), "privacy_source", "run");
    io::h5_write_attr(f.id(), "dp_enabled", int64_t{1});  // but no /privacy
  }
  EXPECT_THROW(read_release_privacy(path), Error);
}

TEST(Release, StatedEpsilonIsAProvenBound) {
  // gdp is a CLT approximation that can under-count: a release states RDP instead.
  const dp::EpsilonReport gdp = release_epsilon(dp_ledger(dp::AccountantKind::gdp));
  EXPECT_EQ(gdp.accountant, dp::AccountantKind::rdp);
  EXPECT_EQ(gdp.epsilon, dp_ledger().epsilon().epsilon);
  // No private step yet: nothing spent.
  EXPECT_EQ(release_epsilon(dp::PrivacyLedger(1e-5, dp::AccountantKind::rdp)).epsilon, 0.0);
  dp::PrivacyLedger no_delta;
  no_delta.add_steps(0.25, 1.0, 3);
  EXPECT_THROW(release_epsilon(no_delta), Error);
}

TEST(Release, DpFlopsFileHasNoTimes) {
  test::ScratchDir dir;
  FlopsTally t;
  t.total_flops = 1e9;
  t.wall_seconds = 12.5;
  t.phase_seconds["forward_backward"] = 10.0;
  t.steps.push_back(FlopsTally::Step{1, 8, 1e8, 3e8, 6e8, 1e7, 1e6});
  const dp::PrivacyLedger ledger = dp_ledger();
  const std::map<std::string, int64_t> dp_attrs{{"dp_enabled", 1}}, plain_attrs{{"dp_enabled", 0}};
  write_flops(dir / "dp.h5", {}, t, dp_attrs, {}, &ledger);
  write_flops(dir / "plain.h5", {}, t, plain_attrs, {}, nullptr);
  {
    io::H5File f = io::H5File::open(dir / "dp.h5");
    for (const char* timed : {"wall_seconds", "achieved_tflops", "phase_seconds"})
      EXPECT_FALSE(io::h5_exists(f.id(), timed)) << timed;
    EXPECT_EQ(io::h5_read_attr_int(f.id(), "dp_enabled"), 1);
    EXPECT_EQ(dp::PrivacyLedger::load(f.id(), "privacy"), ledger);
    EXPECT_EQ(io::h5_read<double>(f.id(), "total_flops")[0], 1e9);
  }
  {
    io::H5File f = io::H5File::open(dir / "plain.h5");
    EXPECT_EQ(io::h5_read<double>(f.id(), "wall_seconds")[0], 12.5);
    EXPECT_TRUE(io::h5_exists(f.id(), "phase_seconds/forward_backward"));
    EXPECT_EQ(io::h5_read_attr_int(f.id(), "dp_enabled"), 0);
    EXPECT_FALSE(io::h5_exists(f.id(), "privacy"));
  }
  // A DP run without its ledger would be stamped non-private and get its times: refused.
  EXPECT_THROW(write_flops(dir / "x.h5", {}, t, dp_attrs, {}, nullptr), Error);
  EXPECT_THROW(write_flops(dir / "y.h5", {}, t, plain_attrs, {}, &ledger), Error);
}

}  // namespace
}  // namespace vardp::train
