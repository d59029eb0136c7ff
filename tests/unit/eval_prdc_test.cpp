// Density and coverage (Naeem et al.): the hand-worked 1-D example with ties under both
// membership conventions, and properties of identical and disjoint sets.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "vardp/eval/prdc.hpp"

namespace vardp::eval {
namespace {

FeatureMatrix column(const std::vector<float>& v) {
  FeatureMatrix m(static_cast<int64_t>(v.size()), 1);
  for (size_t i = 0; i < v.size(); ++i) m(static_cast<int64_t>(i), 0) = v[i];
  return m;
}

// real {0, 1, 3}: squared radii (k = 1) {1, 1, 4}; fake {2, 6, 5}. Fake 2 lies in the balls of
// real 1 (on the boundary) and real 3; fake 5 on the boundary of real 3's ball. Nearest fake of
// each real sample: {4, 1, 1} (squared).
TEST(EvalPrdc, HandExampleWithTies) {
  const FeatureMatrix real = column({0, 1, 3}), fake = column({2, 6, 5});
  ManifoldOptions opt;
  opt.ks = {1};
  const auto le = compute_prdc(real, fake, opt)[0];
  EXPECT_DOUBLE_EQ(le.density, 3.0 / 3.0);   // (2 + 0 + 1) / (k * 3)
  EXPECT_DOUBLE_EQ(le.coverage, 2.0 / 3.0);  // 1 <= 1 and 1 <= 4
  EXPECT_DOUBLE_EQ(le.precision, 2.0 / 3.0);
  opt.membership = Membership::strict_lt;
  const auto lt = compute_prdc(real, fake, opt)[0];
  EXPECT_DOUBLE_EQ(lt.density, 1.0 / 3.0);   // only real 3's ball holds fake 2 strictly
  EXPECT_DOUBLE_EQ(lt.coverage, 1.0 / 3.0);  // only 1 < 4
  EXPECT_DOUBLE_EQ(lt.precision, 1.0 / 3.0);
  const auto dc = density_coverage(manifold_counts(real, fake, opt));
  EXPECT_DOUBLE_EQ(dc[0].density, lt.density);
  EXPECT_DOUBLE_EQ(dc[0].coverage, lt.coverage);
}

TEST(EvalPrdc, IdenticalSetsHaveFullCoverageAndUnitDensity) {
  // fake == real with distinct pairwise distances: under `<=` each real ball holds exactly its
  // own sample and its k nearest neighbours, so the fakes collect N (k + 1) hits in all.
  FeatureMatrix x(40, 3);
  for (int64_t i = 0; i < x.rows(); ++i)
    for (int64_t j = 0; j < 3; ++j) x(i, j) = float(std::sin(1.7 * i + j) * 10.0);
  ManifoldOptions opt;
  opt.ks = {3};
  const auto m = compute_prdc(x, x, opt)[0];
  EXPECT_EQ(m.coverage, 1.0);
  EXPECT_EQ(m.precision, 1.0);
  EXPECT_EQ(m.recall, 1.0);
  EXPECT_DOUBLE_EQ(m.density, 4.0 / 3.0);
}

TEST(EvalPrdc, DisjointSetsScoreZero) {
  FeatureMatrix real(20, 2), fake(25, 2);
  for (int64_t i = 0; i < real.rows(); ++i) real.row(i) << float(i % 5), float(i / 5);
  for (int64_t i = 0; i < fake.rows(); ++i) fake.row(i) << 100.f + float(i % 5), float(i / 5);
  ManifoldOptions opt;
  opt.ks = {3, 5};
  for (const auto& m : compute_prdc(real, fake, opt)) {
    EXPECT_EQ(m.precision, 0.0);
    EXPECT_EQ(m.recall, 0.0);
    EXPECT_EQ(m.density, 0.0);
    EXPECT_EQ(m.coverage, 0.0);
  }
}

}  // namespace
}  // namespace vardp::eval
