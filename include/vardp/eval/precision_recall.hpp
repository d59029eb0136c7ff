// Improved precision and recall (Kynkaanniemi et al. 2019), the k-NN manifold metrics the paper's
// ADM evaluator reports. Each set's manifold is the union of balls around its samples, the radius
// of a ball being the distance to the k-th nearest *other* sample of the same set (duplicates
// count as neighbours at distance 0). precision = share of fake samples inside the real manifold,
// recall = share of real samples inside the fake manifold. Distances are squared Euclidean in
// float64; membership is `<=` as in the original (prdc uses `<`; selectable).
#pragma once
#include <Eigen/Core>

#include <cstdint>
#include <string>
#include <vector>

#include "vardp/eval/precision_recall_pairwise.hpp"
#include "vardp/eval/stats.hpp"

namespace vardp::eval {

enum class Membership {
  non_strict_le,  // d <= r: Kynkaanniemi et al., the ADM / paper evaluator
  strict_lt,      // d < r: clovaai prdc (Naeem et al.)
};
std::string to_string(Membership m);                 // "le" / "lt"
Membership membership_from_string(const std::string& name);  // "le", "<=", "lt", "<"

struct ManifoldOptions {
  std::vector<int> ks{3};  // neighbourhood sizes, each in [1, N - 1]
  Membership membership = Membership::non_strict_le;
  PairwiseOptions pairwise;
};

// Squared distance of each row of x to its k-th nearest other row, one column per k (N x |ks|).
// Distances are computed after subtracting `shift` (any vector; a central one improves accuracy).
Eigen::MatrixXd knn_radii(const FeatureMatrix& x, const std::vector<int>& ks,
                          const Eigen::RowVectorXd& shift, const PairwiseOptions& opt);

// Everything the four manifold metrics need, from one pass over the real x fake distances.
struct ManifoldCounts {
  std::vector<int> ks;
  Membership membership = Membership::non_strict_le;
  Eigen::MatrixXd real_radii;  // (N_real x |ks|) squared radii
  Eigen::MatrixXd fake_radii;  // (N_fake x |ks|)
  // Number of real balls that contain each fake sample (N_fake x |ks|).
  Eigen::Matrix<int32_t, Eigen::Dynamic, Eigen::Dynamic> fake_in_real_balls;
  // Whether each real sample lies in the fake manifold (N_real x |ks|).
  Eigen::Array<bool, Eigen::Dynamic, Eigen::Dynamic> real_in_fake_manifold;
  Eigen::VectorXd real_nn_fake_sqdist;  // squared distance of each real sample to its nearest fake
};

ManifoldCounts manifold_counts(const FeatureMatrix& real, const FeatureMatrix& fake,
                               const ManifoldOptions& opt);

struct PrecisionRecall {
  int k = 0;
  double precision = 0.0;
  double recall = 0.0;
};
std::vector<PrecisionRecall> precision_recall(const ManifoldCounts& counts);
std::vector<PrecisionRecall> improved_precision_recall(const FeatureMatrix& real,
                                                       const FeatureMatrix& fake,
                                                       const ManifoldOptions& opt = {});

}  // namespace vardp::eval
