// Improved precision/recall and the k-NN radii: a hand-worked example with ties, a brute-force
// cross-check on random lattice data (many exact ties and duplicates), argument checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "vardp/eval/prdc.hpp"
#include "vardp/eval/precision_recall.hpp"
#include "vardp/util/error.hpp"

namespace vardp::eval {
namespace {

FeatureMatrix column(const std::vector<float>& v) {
  FeatureMatrix m(static_cast<int64_t>(v.size()), 1);
  for (size_t i = 0; i < v.size(); ++i) m(static_cast<int64_t>(i), 0) = v[i];
  return m;
}

// Hand-worked in 1-D with k = 1: real {0, 1, 3} has squared radii {1, 1, 4}; fake {2, 6, 5} has
// {9, 1, 1}. Fake 2 sits exactly on the ball of real 1, fake 5 exactly on the ball of real 3.
TEST(EvalPrecisionRecall, HandExampleWithTies) {
  const FeatureMatrix real = column({0, 1, 3});
  const FeatureMatrix fake = column({2, 6, 5});
  ManifoldOptions opt;
  opt.ks = {1};
  const auto c = manifold_counts(real, fake, opt);
  EXPECT_EQ(c.real_radii(0, 0), 1.0);
  EXPECT_EQ(c.real_radii(1, 0), 1.0);
  EXPECT_EQ(c.real_radii(2, 0), 4.0);
  EXPECT_EQ(c.fake_radii(0, 0), 9.0);
  EXPECT_EQ(c.fake_in_real_balls(0, 0), 2);  // balls of real 1 (tie) and real 3
  EXPECT_EQ(c.fake_in_real_balls(1, 0), 0);
  EXPECT_EQ(c.fake_in_real_balls(2, 0), 1);  // ball of real 3 (tie)
  const auto le = precision_recall(c)[0];
  EXPECT_DOUBLE_EQ(le.precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(le.recall, 1.0);

  opt.membership = Membership::strict_lt;
  const auto lt = improved_precision_recall(real, fake, opt)[0];
  EXPECT_DOUBLE_EQ(lt.precision, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(lt.recall, 1.0);
}

TEST(EvalPrecisionRecall, DuplicatesAreNeighboursAtDistanceZero) {
  // Rows 0 and 1 coincide: for k = 1 their radius is 0 (the other copy), not the next point.
  const FeatureMatrix x = column({4, 4, 7, 11});
  const Eigen::MatrixXd r = knn_radii(x, {1, 2, 3}, Eigen::RowVectorXd(), PairwiseOptions{});
  EXPECT_EQ(r(0, 0), 0.0);
  EXPECT_EQ(r(1, 0), 0.0);
  EXPECT_EQ(r(0, 1), 9.0);
  EXPECT_EQ(r(0, 2), 49.0);
  EXPECT_EQ(r(2, 0), 9.0);
  EXPECT_EQ(r(3, 2), 49.0);
}

// Straightforward O(N^2 d) reference with direct differences.
struct Brute {
  std::vector<double> precision, recall, density, coverage;
};
Brute brute_force(const FeatureMatrix& real, const FeatureMatrix& fake, const std::vector<int>& ks,
                  bool strict) {
  auto d2 = [](const FeatureMatrix& a, int64_t i, const FeatureMatrix& b, int64_t j) {
    double s = 0;
    for (int64_t c = 0; c < a.cols(); ++c) {
      const double t = static_cast<double>(a(i, c)) - static_cast<double>(b(j, c));
      s += t * t;
    }
    return s;
  };
  auto radii = [&](const FeatureMatrix& x, int k) {
    std::vector<double> r(x.rows());
    for (int64_t i = 0; i < x.rows(); ++i) {
      std::vector<double> row;
      for (int64_t j = 0; j < x.rows(); ++j)
        if (j != i) row.push_back(d2(x, i, x, j));
      std::sort(row.begin(), row.end());
      r[i] = row[k - 1];
    }
    return r;
  };
  auto in = [&](double d, double r) { return strict ? d < r : d <= r; };
  Brute b;
  for (int k : ks) {
    const auto rr = radii(real, k), rf = radii(fake, k);
    int64_t prec = 0, hits = 0, rec = 0, cov = 0;
    for (int64_t f = 0; f < fake.rows(); ++f) {
      int64_t n = 0;
      for (int64_t j = 0; j < real.rows(); ++j) n += in(d2(fake, f, real, j), rr[j]);
      prec += n > 0;
      hits += n;
    }
    for (int64_t j = 0; j < real.rows(); ++j) {
      bool any = false;
      double nn = 1e300;
      for (int64_t f = 0; f < fake.rows(); ++f) {
        const double d = d2(real, j, fake, f);
        any |= in(d, rf[f]);
        nn = std::min(nn, d);
      }
      rec += any;
      cov += in(nn, rr[j]);
    }
    b.precision.push_back(double(prec) / fake.rows());
    b.recall.push_back(double(rec) / real.rows());
    b.density.push_back(double(hits) / (double(k) * fake.rows()));
    b.coverage.push_back(double(cov) / real.rows());
  }
  return b;
}

TEST(EvalPrecisionRecall, MatchesBruteForceOnLatticeData) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> coord(0, 3);
  for (int trial = 0; trial < 4; ++trial) {
    const int d = 2 + trial;
    FeatureMatrix real(60 + 7 * trial, d), fake(45 + 11 * trial, d);
    for (int64_t i = 0; i < real.size(); ++i) real.data()[i] = float(coord(rng));
    for (int64_t i = 0; i < fake.size(); ++i) fake.data()[i] = float(coord(rng) + (i % 3 == 0));
    for (bool strict : {false, true}) {
      ManifoldOptions opt;
      opt.ks = {1, 3, 5};
      opt.membership = strict ? Membership::strict_lt : Membership::non_strict_le;
      opt.pairwise.block_rows = 16;
      opt.pairwise.block_cols = 9;
      opt.pairwise.threads = 2;
      const auto got = compute_prdc(real, fake, opt);
      const auto want = brute_force(real, fake, opt.ks, strict);
      for (size_t q = 0; q < opt.ks.size(); ++q) {
        EXPECT_DOUBLE_EQ(got[q].precision, want.precision[q]) << trial << strict << q;
        EXPECT_DOUBLE_EQ(got[q].recall, want.recall[q]) << trial << strict << q;
        EXPECT_DOUBLE_EQ(got[q].density, want.density[q]) << trial << strict << q;
        EXPECT_DOUBLE_EQ(got[q].coverage, want.coverage[q]) << trial << strict << q;
      }
    }
  }
}

TEST(EvalPrecisionRecall, MatchesBruteForceOnGaussianData) {
  std::mt19937 rng(11);
  std::normal_distribution<float> n01(0.f, 1.f);
  FeatureMatrix real(150, 16), fake(120, 16);
  for (int64_t i = 0; i < real.size(); ++i) real.data()[i] = 100.f + n01(rng);  // large offset
  for (int64_t i = 0; i < fake.size(); ++i) fake.data()[i] = 100.3f + 1.2f * n01(rng);
  ManifoldOptions opt;
  opt.ks = {3, 5};
  const auto got = compute_prdc(real, fake, opt);
  const auto want = brute_force(real, fake, opt.ks, false);
  for (size_t q = 0; q < opt.ks.size(); ++q) {
    EXPECT_DOUBLE_EQ(got[q].precision, want.precision[q]);
    EXPECT_DOUBLE_EQ(got[q].recall, want.recall[q]);
    EXPECT_DOUBLE_EQ(got[q].density, want.density[q]);
    EXPECT_DOUBLE_EQ(got[q].coverage, want.coverage[q]);
  }
}

TEST(EvalPrecisionRecall, RejectsBadArguments) {
  const FeatureMatrix a = column({0, 1, 2, 3});
  const FeatureMatrix b = column({0, 1, 2});
  ManifoldOptions opt;
  opt.ks = {3};
  EXPECT_THROW(manifold_counts(a, b, opt), Error);  // k = 3 > N_fake - 1 = 2
  opt.ks = {0};
  EXPECT_THROW(manifold_counts(a, b, opt), Error);
  opt.ks = {};
  EXPECT_THROW(manifold_counts(a, b, opt), Error);
  FeatureMatrix wide(3, 2);
  wide.setZero();
  opt.ks = {1};
  EXPECT_THROW(manifold_counts(a, wide, opt), Error);
  EXPECT_EQ(membership_from_string("<="), Membership::non_strict_le);
  EXPECT_EQ(membership_from_string("lt"), Membership::strict_lt);
  EXPECT_THROW(membership_from_string("leq"), UsageError);
}

}  // namespace
}  // namespace vardp::eval
