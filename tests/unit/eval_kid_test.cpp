// KID: the blocked, threaded U-statistic against a direct double loop; ~0 for two samples of one
// distribution, clearly positive for shifted ones.
#include <gtest/gtest.h>

#include <random>

#include "vardp/eval/kid.hpp"
#include "vardp/util/error.hpp"

namespace vardp::eval {
namespace {

FeatureMatrix sample(int64_t n, int64_t d, float shift, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n01;
  FeatureMatrix x(n, d);
  for (int64_t i = 0; i < x.size(); ++i) x.data()[i] = shift + n01(rng);
  return x;
}

double direct_kid(const FeatureMatrix& x, const FeatureMatrix& y) {
  const double g = 1.0 / x.cols();
  auto k = [&](const FeatureMatrix& a, int64_t i, const FeatureMatrix& b, int64_t j) {
    const double dot = a.row(i).cast<double>().dot(b.row(j).cast<double>());
    return std::pow(g * dot + 1.0, 3);
  };
  double kxx = 0, kyy = 0, kxy = 0;
  const double m = x.rows(), n = y.rows();
  for (int64_t i = 0; i < x.rows(); ++i)
    for (int64_t j = 0; j < x.rows(); ++j)
      if (i != j) kxx += k(x, i, x, j);
  for (int64_t i = 0; i < y.rows(); ++i)
    for (int64_t j = 0; j < y.rows(); ++j)
      if (i != j) kyy += k(y, i, y, j);
  for (int64_t i = 0; i < x.rows(); ++i)
    for (int64_t j = 0; j < y.rows(); ++j) kxy += k(x, i, y, j);
  return kxx / (m * (m - 1)) + kyy / (n * (n - 1)) - 2 * kxy / (m * n);
}

TEST(EvalKid, MatchesDirectComputation) {
  const FeatureMatrix x = sample(70, 6, 0.f, 1), y = sample(55, 6, 0.3f, 2);
  KidOptions opt;
  opt.pairwise.block_rows = 8;
  opt.pairwise.block_cols = 13;
  opt.pairwise.threads = 3;
  const KidResult r = kernel_inception_distance(x, y, opt);
  EXPECT_NEAR(r.kid, direct_kid(x, y), 1e-12);
  EXPECT_NEAR(r.kid, r.mean_k_real + r.mean_k_fake - 2 * r.mean_k_cross, 1e-15);
}

TEST(EvalKid, SameDistributionNearZeroShiftedPositive) {
  const FeatureMatrix x = sample(400, 16, 0.f, 3), y = sample(400, 16, 0.f, 4);
  const FeatureMatrix z = sample(400, 16, 0.5f, 5);
  const double same = kernel_inception_distance(x, y).kid;
  const double shifted = kernel_inception_distance(x, z).kid;
  EXPECT_LT(std::fabs(same), 0.02);
  EXPECT_GT(shifted, 10 * std::fabs(same));
  EXPECT_GT(shifted, 0.05);
}

TEST(EvalKid, RejectsBadInputs) {
  const FeatureMatrix x = sample(5, 3, 0.f, 6), y = sample(5, 4, 0.f, 7), one = sample(1, 3, 0.f, 8);
  EXPECT_THROW(kernel_inception_distance(x, y), Error);
  EXPECT_THROW(kernel_inception_distance(x, one), Error);
}

}  // namespace
}  // namespace vardp::eval
