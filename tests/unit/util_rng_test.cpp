// Counter-based streams: reproducible, independent of call order, well distributed.
#include <gtest/gtest.h>

#include <cmath>

#include "vardp/util/rng.hpp"

namespace vardp::rng {
namespace {

TEST(Philox, MatchesRandom123KnownAnswer) {
  // Known-answer vector of Random123 (kat_vectors: philox4x32 10 rounds, all-ones input).
  auto out = philox4x32({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu});
  EXPECT_EQ(out[0], 0x408f276du);
  EXPECT_EQ(out[1], 0x41c83b0eu);
  EXPECT_EQ(out[2], 0xa20bc7c6u);
  EXPECT_EQ(out[3], 0x6d5451fdu);
  auto zero = philox4x32({0, 0, 0, 0}, {0, 0});
  EXPECT_EQ(zero[0], 0x6627e8d5u);
  EXPECT_EQ(zero[1], 0xe169c58du);
  EXPECT_EQ(zero[2], 0xbc57ac4cu);
  EXPECT_EQ(zero[3], 0x9b00dbd8u);
}

TEST(Stream, SameKeySameDrawsWhateverElseHappened) {
  Stream a(7, Purpose::view, 3, 11, 2);
  Stream other(7, Purpose::view, 3, 12, 2);
  for (int i = 0; i < 5; ++i) other.next_u64();
  Stream b(7, Purpose::view, 3, 11, 2);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
}

TEST(Stream, DifferentKeysDiffer) {
  EXPECT_NE(Stream(7, Purpose::view, 3, 11, 2).next_u64(), Stream(7, Purpose::view, 3, 11, 3).next_u64());
  EXPECT_NE(Stream(7, Purpose::view, 0).next_u64(), Stream(7, Purpose::dp_noise, 0).next_u64());
  EXPECT_NE(Stream(7, Purpose::view).next_u64(), Stream(8, Purpose::view).next_u64());
}

TEST(Stream, UniformAndNormalMoments) {
  Stream s(1, Purpose::test);
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0;
  for (int i = 0; i < n; ++i) {
    double u = s.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    su += u;
    double z = s.normal();
    sn += z;
    sn2 += z * z;
  }
  // 5-sigma bounds.
  EXPECT_NEAR(su / n, 0.5, 5 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(sn / n, 0.0, 5 * std::sqrt(1.0 / n));
  EXPECT_NEAR(sn2 / n, 1.0, 5 * std::sqrt(2.0 / n));
}

TEST(Stream, BelowIsInRangeAndCoversIt) {
  Stream s(3, Purpose::test);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) {
    uint64_t v = s.below(7);
    ASSERT_LT(v, 7u);
    counts[v]++;
  }
  for (int c : counts) EXPECT_NEAR(c, 10000, 500);
}

}  // namespace
}  // namespace vardp::rng
