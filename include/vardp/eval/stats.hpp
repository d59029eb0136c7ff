// Feature statistics for the Frechet distance: mean and covariance (ddof = 1) in float64,
// accumulated batch by batch so that feature sets never have to be held whole.
#pragma once
#include <Eigen/Core>

#include <cstdint>
#include <string>

namespace vardp::eval {

// One feature vector per row, as feature networks and the HDF5 files store them.
using FeatureMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct FeatureStats {
  int64_t count = 0;    // number of samples behind the statistics; 0 when unknown
  Eigen::VectorXd mu;   // (d)
  Eigen::MatrixXd sigma;  // (d, d), symmetric, ddof = 1 (numpy.cov(rowvar=False))
  int64_t dim() const { return mu.size(); }
};

// Streaming mean / scatter: each batch is centred on its own mean and merged with the running
// totals (Chan, Golub & LeVeque), which keeps float64 accuracy for features with a large mean.
class StatsAccumulator {
 public:
  explicit StatsAccumulator(int64_t dim);
  // rows x dim, row-major float32 (one sample per row).
  void add(const float* rows_data, int64_t rows);
  void add(const FeatureMatrix& batch);
  int64_t count() const { return count_; }
  int64_t dim() const { return dim_; }
  // Needs at least 2 samples (the covariance has ddof = 1).
  FeatureStats finalize() const;

 private:
  int64_t dim_;
  int64_t count_ = 0;
  Eigen::VectorXd mean_;
  Eigen::MatrixXd scatter_;  // sum of outer products of centred rows; lower triangle is filled
};

// Statistics of a whole matrix, accumulated in batches of `batch_rows`.
FeatureStats compute_stats(const FeatureMatrix& features, int64_t batch_rows = 4096);

// Column means in float64, row by row (no float64 copy of the matrix).
Eigen::VectorXd feature_mean(const FeatureMatrix& features);

// Throws vardp::Error (with `what` as context) unless mu/sigma have matching finite shapes.
void check_stats(const FeatureStats& s, const std::string& what);

}  // namespace vardp::eval
