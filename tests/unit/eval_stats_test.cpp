// Streaming feature statistics: batch-size independence, agreement with a two-pass reference,
// float64 accuracy with a large common offset, and the HDF5 statistics files.
#include <gtest/gtest.h>

#include <random>

#include "test_paths.hpp"
#include "vardp/eval/stats.hpp"
#include "vardp/eval/stats_io.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/util/error.hpp"

namespace vardp::eval {
namespace {

FeatureMatrix random_features(int64_t n, int64_t d, float offset, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n01(0.f, 1.f);
  FeatureMatrix m(n, d);
  for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = offset + n01(rng) * (1.f + float(i % d) / d);
  return m;
}

// Two-pass float64 reference: mean, then the centred cross-product / (n - 1).
FeatureStats two_pass(const FeatureMatrix& x) {
  const Eigen::MatrixXd a = x.cast<double>();
  FeatureStats s;
  s.count = x.rows();
  s.mu = a.colwise().mean().transpose();
  const Eigen::MatrixXd c = a.rowwise() - s.mu.transpose();
  s.sigma = c.transpose() * c / double(x.rows() - 1);
  return s;
}

TEST(EvalStats, StreamingEqualsTwoPassForAnyBatchSize) {
  const FeatureMatrix x = random_features(1003, 17, 0.5f, 1);
  const FeatureStats ref = two_pass(x);
  for (int64_t batch : {1, 2, 7, 100, 1003, 5000}) {
    const FeatureStats s = compute_stats(x, batch);
    EXPECT_EQ(s.count, 1003);
    EXPECT_LT((s.mu - ref.mu).cwiseAbs().maxCoeff(), 1e-13) << batch;
    EXPECT_LT((s.sigma - ref.sigma).cwiseAbs().maxCoeff(), 1e-13) << batch;
    EXPECT_EQ(s.sigma, s.sigma.transpose()) << batch;
  }
}

TEST(EvalStats, LargeOffsetKeepsCovarianceAccurate) {
  // Features with mean 1e4 and unit spread: a one-pass sum of squares would lose ~8 digits.
  const FeatureMatrix x = random_features(4000, 8, 1e4f, 2);
  const FeatureStats ref = two_pass(x);
  const FeatureStats s = compute_stats(x, 64);
  EXPECT_LT((s.sigma - ref.sigma).cwiseAbs().maxCoeff(), 1e-10);
  EXPECT_NEAR(s.mu(0), ref.mu(0), 1e-9);
}

TEST(EvalStats, AccumulatorAcceptsUnevenBatches) {
  const FeatureMatrix x = random_features(50, 5, -3.f, 3);
  StatsAccumulator acc(5);
  acc.add(x.topRows(1));
  acc.add(x.middleRows(1, 0));
  acc.add(x.middleRows(1, 30));
  acc.add(x.bottomRows(19));
  const FeatureStats s = acc.finalize();
  const FeatureStats ref = two_pass(x);
  EXPECT_EQ(s.count, 50);
  EXPECT_LT((s.sigma - ref.sigma).cwiseAbs().maxCoeff(), 1e-13);
}

TEST(EvalStats, RejectsTooFewSamplesAndBadShapes) {
  StatsAccumulator acc(3);
  FeatureMatrix one(1, 3);
  one.setOnes();
  acc.add(one);
  EXPECT_THROW(acc.finalize(), Error);
  FeatureMatrix wrong(2, 4);
  wrong.setZero();
  EXPECT_THROW(acc.add(wrong), Error);
  FeatureStats bad;
  bad.mu = Eigen::VectorXd::Zero(3);
  bad.sigma = Eigen::MatrixXd::Zero(3, 2);
  EXPECT_THROW(check_stats(bad, "bad"), Error);
  bad.sigma = Eigen::MatrixXd::Zero(3, 3);
  bad.sigma(1, 1) = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(check_stats(bad, "bad"), Error);
}

TEST(EvalStats, StatsFileRoundTrip) {
  test::ScratchDir dir;
  const FeatureMatrix x = random_features(300, 6, 1.f, 4);
  const FeatureMatrix sp = random_features(300, 4, 0.f, 5);
  const FeatureStats pool = compute_stats(x), spatial = compute_stats(sp);
  write_stats_file(dir / "ref.h5", pool, spatial, "features.h5");
  auto f = io::H5File::open(dir / "ref.h5");
  EXPECT_EQ(io::check_format(f.id(), f.path(), kStatsFormat, kStatsFormatVersion), 1);
  f.close();
  const EvalInput in = read_eval_input(dir / "ref.h5", true);
  ASSERT_TRUE(in.pool.stats && !in.pool.features);
  EXPECT_EQ(in.pool.stats->count, 300);
  EXPECT_EQ(in.pool.stats->mu, pool.mu);
  EXPECT_EQ(in.pool.stats->sigma, pool.sigma);
  ASSERT_TRUE(in.spatial.stats.has_value());
  EXPECT_EQ(in.spatial.stats->sigma, spatial.sigma);
}

TEST(EvalStats, ReadsFeaturesAndStreamsTheirStatistics) {
  test::ScratchDir dir;
  const FeatureMatrix x = random_features(777, 9, 2.f, 6);
  {
    auto f = io::H5File::create(dir / "feat.h5");
    io::h5_write<float>(f.id(), "/features", x.data(),
                        {static_cast<hsize_t>(x.rows()), static_cast<hsize_t>(x.cols())});
  }
  const EvalInput loaded = read_eval_input(dir / "feat.h5", true, 100);
  ASSERT_TRUE(loaded.pool.features.has_value());
  EXPECT_EQ(*loaded.pool.features, x);
  EXPECT_FALSE(loaded.spatial.present());
  const EvalInput streamed = read_eval_input(dir / "feat.h5", false, 100);
  ASSERT_TRUE(streamed.pool.stats && !streamed.pool.features);
  EXPECT_LT((streamed.pool.stats->sigma - two_pass(x).sigma).cwiseAbs().maxCoeff(), 1e-13);
}

TEST(EvalStats, ImagesNeedAFeatureNetwork) {
  test::ScratchDir dir;
  {
    auto f = io::H5File::create(dir / "images.h5");
    std::vector<uint8_t> img(2 * 4 * 4 * 3, 7);
    io::h5_write<uint8_t>(f.id(), "/images", img, {2, 4, 4, 3});
  }
  try {
    read_eval_input(dir / "images.h5", true);
    FAIL() << "expected a UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("images need a feature network (--features-net)"),
              std::string::npos);
  }
  {
    auto f = io::H5File::create(dir / "mu_only.h5");
    std::vector<double> mu(3, 0.0);
    io::h5_write<double>(f.id(), "/mu", mu, {3});
  }
  EXPECT_THROW(read_eval_input(dir / "mu_only.h5", true), Error);
}

}  // namespace
}  // namespace vardp::eval
