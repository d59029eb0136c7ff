// The privacy ledger: segment bookkeeping, composition, HDF5 round trip and validation.
#include <gtest/gtest.h>

#include <cmath>

#include "test_paths.hpp"
#include "vardp/dp/ledger.hpp"
#include "vardp/dp/rdp.hpp"
#include "vardp/io/h5.hpp"

namespace vardp::dp {
namespace {

TEST(PrivacyLedger, MergesEqualStepsAndKeepsHeterogeneousSegments) {
  PrivacyLedger ledger;
  EXPECT_TRUE(ledger.empty());
  for (int i = 0; i < 5; ++i) ledger.add_steps(0.1, 1.2);
  ledger.add_steps(0.1, 1.2, 0);  // nothing
  ledger.add_steps(0.1, 0.9, 3);
  ledger.add_steps(0.05, 0.9, 2);
  ledger.add_steps(0.05, 0.9);
  ASSERT_EQ(ledger.segments().size(), 3u);
  EXPECT_EQ(ledger.segments()[0], (Segment{0.1, 1.2, 5}));
  EXPECT_EQ(ledger.segments()[1], (Segment{0.1, 0.9, 3}));
  EXPECT_EQ(ledger.segments()[2], (Segment{0.05, 0.9, 3}));
  EXPECT_EQ(ledger.total_steps(), 11);
  EXPECT_THROW(ledger.add_steps(1.5, 1.0), Error);
  EXPECT_THROW(ledger.add_steps(0.1, -1.0), Error);
  EXPECT_THROW(ledger.add_steps(0.1, 1.0, -2), Error);
  EXPECT_EQ(ledger.total_steps(), 11);  // failed adds change nothing
}

TEST(PrivacyLedger, EpsilonComposesAllSegments) {
  PrivacyLedger ledger(1e-5, AccountantKind::rdp);
  ledger.add_steps(0.01, 1.1, 400);
  ledger.add_steps(0.04, 1.5, 100);
  const auto& orders = default_rdp_orders();
  auto total = rdp_subsampled_gaussian(Segment{0.01, 1.1, 400}, orders);
  const auto second = rdp_subsampled_gaussian(Segment{0.04, 1.5, 100}, orders);
  for (std::size_t i = 0; i < total.size(); ++i) total[i] += second[i];
  const RdpEpsilon want = rdp_to_epsilon(orders, total, 1e-5);
  const EpsilonReport got = ledger.epsilon();
  EXPECT_DOUBLE_EQ(got.epsilon, want.epsilon);
  EXPECT_EQ(got.rdp_best_order, want.best_order);
  // Each part alone spends less than the whole; more steps spend more, under every accountant.
  for (AccountantKind kind : {AccountantKind::rdp, AccountantKind::prv}) {
    const double whole = ledger.epsilon(1e-5, kind).epsilon;
    EXPECT_GT(whole, compute_epsilon({ledger.segments()[0]}, 1e-5, kind).epsilon);
    EXPECT_GT(whole, compute_epsilon({ledger.segments()[1]}, 1e-5, kind).epsilon);
    PrivacyLedger more = ledger;
    more.add_steps(0.04, 1.5, 50);
    EXPECT_GT(more.epsilon(1e-5, kind).epsilon, whole);
    // PRV and RDP are both upper bounds; PRV is the tighter one.
    if (kind == AccountantKind::prv) {
      EXPECT_LT(whole, ledger.epsilon(1e-5, AccountantKind::rdp).epsilon);
    }
  }
  EXPECT_THROW(PrivacyLedger().epsilon(), Error);  // no target delta
  EXPECT_EQ(PrivacyLedger().epsilon(1e-5, AccountantKind::rdp).epsilon, 0.0);
}

TEST(PrivacyLedger, AppendContinuesTheHistory) {
  PrivacyLedger a, b;
  a.add_steps(0.1, 1.0, 3);
  b.add_steps(0.1, 1.0, 2);
  b.add_steps(0.2, 1.0, 1);
  a.append(b);
  ASSERT_EQ(a.segments().size(), 2u);
  EXPECT_EQ(a.segments()[0].steps, 5);
  EXPECT_EQ(a.total_steps(), 6);
}

TEST(PrivacyLedger, Hdf5RoundTrip) {
  test::ScratchDir dir;
  PrivacyLedger ledger(1.0 / 1020, AccountantKind::prv);
  ledger.add_steps(0.251, 1.94580078125, 300);
  ledger.add_steps(0.251, 2.5, 18);
  ledger.add_steps(0.125, 2.5, 7);
  const EpsilonReport spent = ledger.epsilon(1.0 / 1020, AccountantKind::rdp);
  {
    io::H5File f = io::H5File::create(dir / "ledger.h5");
    ledger.save(f.id(), "privacy");
    ledger.save(f.id(), "checkpoint/step_325/privacy", &spent);
    PrivacyLedger().save(f.id(), "empty");
  }
  io::H5File f = io::H5File::open(dir / "ledger.h5");
  const PrivacyLedger back = PrivacyLedger::load(f.id(), "privacy");
  EXPECT_EQ(back, ledger);
  EXPECT_EQ(back.segments()[0].noise_multiplier, 1.94580078125);  // bit-exact
  ASSERT_TRUE(back.delta().has_value());
  EXPECT_EQ(*back.delta(), 1.0 / 1020);
  EXPECT_EQ(back.accountant(), AccountantKind::prv);
  EXPECT_EQ(PrivacyLedger::load(f.id(), "checkpoint/step_325/privacy"), ledger);
  const PrivacyLedger empty = PrivacyLedger::load(f.id(), "empty");
  EXPECT_TRUE(empty.empty());
  EXPECT_FALSE(empty.delta().has_value());

  // Self-describing group: what analysis scripts read.
  io::H5Handle g = io::h5_open_group(f.id(), "checkpoint/step_325/privacy");
  EXPECT_EQ(io::h5_read_attr_string(g.id(), "format"), kLedgerFormat);
  EXPECT_EQ(io::h5_read_attr_int(g.id(), "format_version"), kLedgerFormatVersion);
  EXPECT_EQ(io::h5_read_attr_int(g.id(), "total_steps"), 325);
  EXPECT_EQ(io::h5_read_attr_string(g.id(), "accountant"), "prv");
  EXPECT_DOUBLE_EQ(io::h5_read_attr_double(g.id(), "epsilon"), spent.epsilon);
  EXPECT_EQ(io::h5_read_attr_string(g.id(), "epsilon_accountant"), "rdp");
  EXPECT_EQ(io::h5_read<int64_t>(g.id(), "steps"), (std::vector<int64_t>{300, 18, 7}));
  EXPECT_EQ(io::h5_read<double>(g.id(), "sample_rate"), (std::vector<double>{0.251, 0.251, 0.125}));
}

TEST(PrivacyLedger, SaveReplacesAnExistingLedger) {
  test::ScratchDir dir;
  io::H5File f = io::H5File::create(dir / "ledger.h5");
  PrivacyLedger ledger(1e-5, AccountantKind::rdp);
  ledger.add_steps(0.1, 1.0, 10);
  ledger.save(f.id(), "privacy");
  ledger.add_steps(0.2, 1.0, 5);
  ledger.save(f.id(), "privacy");
  EXPECT_EQ(PrivacyLedger::load(f.id(), "privacy"), ledger);
}

TEST(PrivacyLedger, LoadRejectsDamagedGroups) {
  test::ScratchDir dir;
  io::H5File f = io::H5File::create(dir / "ledger.h5");
  EXPECT_THROW(PrivacyLedger::load(f.id(), "missing"), Error);

  PrivacyLedger ledger(1e-5, AccountantKind::rdp);
  ledger.add_steps(0.1, 1.0, 10);
  ledger.save(f.id(), "wrong_format");
  io::h5_write_attr(io::h5_open_group(f.id(), "wrong_format").id(), "format", "something.else");
  EXPECT_THROW(PrivacyLedger::load(f.id(), "wrong_format"), Error);

  ledger.save(f.id(), "bad_total");
  io::h5_write_attr(io::h5_open_group(f.id(), "bad_total").id(), "total_steps", int64_t{9});
  EXPECT_THROW(PrivacyLedger::load(f.id(), "bad_total"), Error);

  ledger.save(f.id(), "bad_length");
  io::h5_write<double>(f.id(), "bad_length/noise_multiplier", std::vector<double>{1.0, 2.0}, {2});
  EXPECT_THROW(PrivacyLedger::load(f.id(), "bad_length"), Error);

  ledger.save(f.id(), "bad_value");
  io::h5_write<double>(f.id(), "bad_value/sample_rate", std::vector<double>{1.5}, {1});
  EXPECT_THROW(PrivacyLedger::load(f.id(), "bad_value"), Error);

  ledger.save(f.id(), "future");
  io::h5_write_attr(io::h5_open_group(f.id(), "future").id(), "format_version", int64_t{99});
  EXPECT_THROW(PrivacyLedger::load(f.id(), "future"), Error);
}

}  // namespace
}  // namespace vardp::dp
