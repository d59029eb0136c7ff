// Frechet distance: closed forms (commuting covariances, 2 x 2), agreement of the two trace
// routes, the rank restriction when N <= d, symmetry and argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include <Eigen/LU>
#include <Eigen/QR>

#include "vardp/eval/fid.hpp"
#include "vardp/eval/stats.hpp"
#include "vardp/util/error.hpp"

namespace vardp::eval {
namespace {

Eigen::MatrixXd random_orthogonal(int d, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> n01;
  Eigen::MatrixXd a(d, d);
  for (int i = 0; i < a.size(); ++i) a.data()[i] = n01(rng);
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(a);
  return qr.householderQ();
}

FeatureStats gaussian_stats(const Eigen::VectorXd& mu, const Eigen::MatrixXd& sigma) {
  FeatureStats s;
  s.mu = mu;
  s.sigma = sigma;
  return s;
}

TEST(EvalFid, CommutingCovariancesHaveClosedForm) {
  // S_a = Q diag(a) Q^T, S_b = Q diag(b) Q^T: tr sqrt(S_a S_b) = sum sqrt(a_i b_i).
  const int d = 12;
  const Eigen::MatrixXd q = random_orthogonal(d, 3);
  Eigen::VectorXd a(d), b(d), mu_a(d), mu_b(d);
  for (int i = 0; i < d; ++i) {
    a(i) = std::pow(10.0, -3.0 + 0.5 * i);  // condition number 1e5.5
    b(i) = 0.5 + i;
    mu_a(i) = 0.1 * i;
    mu_b(i) = -0.2 * i;
  }
  const auto sa = gaussian_stats(mu_a, q * a.asDiagonal() * q.transpose());
  const auto sb = gaussian_stats(mu_b, q * b.asDiagonal() * q.transpose());
  const double expected = (mu_a - mu_b).squaredNorm() + a.sum() + b.sum() -
                          2.0 * (a.array() * b.array()).sqrt().sum();
  const FidResult r = frechet_distance(sa, sb);
  EXPECT_NEAR(r.fid, expected, 1e-9 * expected);
  EXPECT_NEAR(frechet_distance(sb, sa).fid, expected, 1e-9 * expected);
  EXPECT_EQ(r.method, FidMethod::stats_eigh);
}

TEST(EvalFid, TwoByTwoClosedForm) {
  // For 2 x 2 SPD matrices, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) with M = S_a S_b.
  Eigen::Matrix2d sa, sb;
  sa << 2.0, 0.7, 0.7, 1.0;
  sb << 0.5, -0.2, -0.2, 3.0;
  const Eigen::Matrix2d m = sa * sb;
  const double tr_sqrt = std::sqrt(m.trace() + 2.0 * std::sqrt(m.determinant()));
  EXPECT_NEAR(trace_sqrt_product(sa, sb, 0, 0), tr_sqrt, 1e-14);
  const auto a = gaussian_stats(Eigen::Vector2d(1, 2), sa);
  const auto b = gaussian_stats(Eigen::Vector2d(0, 0), sb);
  EXPECT_NEAR(frechet_distance(a, b).fid, 5.0 + sa.trace() + sb.trace() - 2.0 * tr_sqrt, 1e-13);
}

FeatureMatrix sample(int64_t n, int64_t d, double scale, double shift, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n01;
  FeatureMatrix x(n, d);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j)
      x(i, j) = static_cast<float>(shift + scale * (1.0 + 0.1 * j) * n01(rng) + 0.3 * (i % 5));
  return x;
}

TEST(EvalFid, RoutesAgreeWithFullRankCovariances) {
  const FeatureMatrix a = sample(400, 20, 1.0, 0.0, 1), b = sample(300, 20, 1.3, 0.2, 2);
  const FidResult eig = frechet_distance(a, b, FidMethod::stats_eigh);
  const FidResult svd = frechet_distance(a, b, FidMethod::features_svd);
  EXPECT_EQ(eig.method, FidMethod::stats_eigh);
  EXPECT_EQ(svd.method, FidMethod::features_svd);
  EXPECT_NEAR(eig.fid, svd.fid, 1e-10 * std::max(1.0, svd.fid));
  EXPECT_EQ(frechet_distance(a, b).method, FidMethod::stats_eigh);  // auto: 400*300*300 > 20^3
}

TEST(EvalFid, RankRestrictionMakesFewSamplesExact) {
  // N = 40 < d = 150: rank(S) <= 39. The restricted eigen route must equal the SVD route, and
  // ignoring the counts (unrestricted eigenvalues) must not be better than the numerical rank.
  const FeatureMatrix a = sample(40, 150, 1.0, 0.0, 3), b = sample(40, 150, 0.8, 0.1, 4);
  const FidResult svd = frechet_distance(a, b, FidMethod::features_svd);
  const FidResult eig = frechet_distance(compute_stats(a), compute_stats(b));
  EXPECT_EQ(frechet_distance(a, b).method, FidMethod::features_svd);  // auto: 40^3 < 150^3
  EXPECT_NEAR(eig.fid, svd.fid, 1e-9 * svd.fid);
  EXPECT_EQ(eig.rank_used, 39);
  FeatureStats sa = compute_stats(a), sb = compute_stats(b);
  sa.count = sb.count = 0;  // unknown counts: numerical rank
  EXPECT_NEAR(frechet_distance(sa, sb).fid, svd.fid, 1e-7 * svd.fid);
}

TEST(EvalFid, IdenticalStatisticsGiveZero) {
  const FeatureMatrix a = sample(30, 64, 2.0, 1.0, 5);  // singular covariance
  const FeatureStats s = compute_stats(a);
  // Zero up to rounding relative to the traces it cancels (2 tr S ~ 1e3 here).
  const double tol = 1e-13 * 2.0 * s.sigma.trace();
  EXPECT_NEAR(frechet_distance(s, s).fid, 0.0, tol);
  EXPECT_NEAR(frechet_distance(a, a).fid, 0.0, tol);
  const FeatureMatrix b = sample(300, 8, 2.0, 1.0, 6);  // full rank
  EXPECT_NEAR(frechet_distance(b, b).fid, 0.0, 1e-13 * 2.0 * compute_stats(b).sigma.trace());
}

TEST(EvalFid, RejectsMismatchedInputs) {
  FeatureStats a = gaussian_stats(Eigen::VectorXd::Zero(3), Eigen::MatrixXd::Identity(3, 3));
  FeatureStats b = gaussian_stats(Eigen::VectorXd::Zero(4), Eigen::MatrixXd::Identity(4, 4));
  EXPECT_THROW(frechet_distance(a, b), Error);
  FeatureMatrix one(1, 3);
  one.setZero();
  FeatureMatrix two(2, 3);
  two.setZero();
  EXPECT_THROW(frechet_distance(one, two), Error);
  EXPECT_EQ(fid_method_from_string("features_svd"), FidMethod::features_svd);
  EXPECT_THROW(fid_method_from_string("sqrtm"), UsageError);
}

}  // namespace
}  // namespace vardp::eval
