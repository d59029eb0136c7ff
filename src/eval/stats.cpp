#include "vardp/eval/stats.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <string>

#include "vardp/util/error.hpp"

namespace vardp::eval {

StatsAccumulator::StatsAccumulator(int64_t dim) : dim_(dim) {
  VARDP_CHECK(dim > 0, "StatsAccumulator: feature dimension must be positive, got ", dim);
  mean_ = Eigen::VectorXd::Zero(dim);
  scatter_ = Eigen::MatrixXd::Zero(dim, dim);
}

void StatsAccumulator::add(const float* rows_data, int64_t rows) {
  if (rows <= 0) return;
  Eigen::Map<const FeatureMatrix> batch(rows_data, rows, dim_);
  Eigen::MatrixXd centred = batch.cast<double>();
  const Eigen::RowVectorXd batch_mean = centred.colwise().mean();
  centred.rowwise() -= batch_mean;
  Eigen::MatrixXd batch_scatter = Eigen::MatrixXd::Zero(dim_, dim_);
  batch_scatter.selfadjointView<Eigen::Lower>().rankUpdate(centred.transpose());

  // Merge of two (count, mean, scatter) triples; the cross term carries the mean difference.
  const double na = static_cast<double>(count_);
  const double nb = static_cast<double>(rows);
  const double n = na + nb;
  const Eigen::VectorXd delta = batch_mean.transpose() - mean_;
  scatter_.triangularView<Eigen::Lower>() += batch_scatter;
  if (count_ > 0) {
    scatter_.selfadjointView<Eigen::Lower>().rankUpdate(delta, na * nb / n);
  }
  mean_ += delta * (nb / n);
  count_ += rows;
}

void StatsAccumulator::add(const FeatureMatrix& batch) {
  VARDP_CHECK(batch.cols() == dim_, "StatsAccumulator: batch has ", batch.cols(),
              " features per row, expected ", dim_);
  add(batch.data(), batch.rows());
}

FeatureStats StatsAccumulator::finalize() const {
  VARDP_CHECK(count_ >= 2, "feature statistics need at least 2 samples, got ", count_);
  FeatureStats s;
  s.count = count_;
  s.mu = mean_;
  s.sigma = scatter_.selfadjointView<Eigen::Lower>();
  s.sigma /= static_cast<double>(count_ - 1);
  return s;
}

FeatureStats compute_stats(const FeatureMatrix& features, int64_t batch_rows) {
  VARDP_CHECK(batch_rows > 0, "compute_stats: batch_rows must be positive");
  StatsAccumulator acc(features.cols());
  for (int64_t r0 = 0; r0 < features.rows(); r0 += batch_rows) {
    const int64_t n = std::min<int64_t>(batch_rows, features.rows() - r0);
    acc.add(features.data() + r0 * features.cols(), n);
  }
  return acc.finalize();
}

Eigen::VectorXd feature_mean(const FeatureMatrix& features) {
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(features.cols());
  for (int64_t i = 0; i < features.rows(); ++i) sum += features.row(i).transpose().cast<double>();
  return features.rows() > 0 ? Eigen::VectorXd(sum / static_cast<double>(features.rows())) : sum;
}

void check_stats(const FeatureStats& s, const std::string& what) {
  const auto d = s.mu.size();
  if (d == 0) throw Error("statistics are empty", what);
  if (s.sigma.rows() != d || s.sigma.cols() != d) {
    throw Error(str("sigma has shape (", s.sigma.rows(), ", ", s.sigma.cols(), ") but mu has ", d,
                    " entries"),
                what);
  }
  if (!s.mu.allFinite()) throw Error("mu has non-finite entries", what);
  if (!s.sigma.allFinite()) throw Error("sigma has non-finite entries", what);
  if (s.count < 0) throw Error(str("negative sample count ", s.count), what);
}

}  // namespace vardp::eval
