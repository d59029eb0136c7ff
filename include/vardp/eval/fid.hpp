// Frechet distance between two Gaussians fitted to feature sets (FID on Inception pool_3
// features, sFID on the spatial mixed_6 features: the maths is the same).
//
//   FID = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr sqrt(S_a S_b)
//
// The trace term is computed in float64 as the sum of square roots of the eigenvalues of the
// symmetric PSD matrix sqrt(S_a) S_b sqrt(S_a) (no general-matrix sqrtm, so no imaginary parts
// and no eps offset). When a covariance comes from N <= d samples its rank is at most N - 1; the
// d - N + 1 remaining eigenvalues are rounding noise whose square roots would bias the trace by
// ~1e-5, so both the square root and the product are restricted to the rank the sample counts
// allow. From raw features with few samples, the SVD of the centred cross-product gives the
// same number directly.
#pragma once
#include <Eigen/Core>

#include <cstdint>
#include <string>

#include "vardp/eval/stats.hpp"

namespace vardp::eval {

enum class FidMethod {
  auto_select,     // the cheaper exact route: features_svd if N_a N_b min(N) < d^3, else stats_eigh
  stats_eigh,      // eigenvalues of sqrt(S_a) S_b sqrt(S_a) (rank-restricted by the counts)
  features_svd,    // singular values of A B^T, A, B centred rows / sqrt(N - 1)
};

struct FidResult {
  double fid = 0.0;
  double mean_sq_diff = 0.0;        // |mu_a - mu_b|^2
  double trace_sigma_a = 0.0;
  double trace_sigma_b = 0.0;
  double trace_sqrt_product = 0.0;  // tr sqrt(S_a S_b)
  int64_t rank_used = 0;            // eigenvalues / singular values summed in the trace term
  FidMethod method = FidMethod::stats_eigh;
};

std::string to_string(FidMethod m);
FidMethod fid_method_from_string(const std::string& name);  // "auto", "stats_eigh", "features_svd"

// From statistics. A count of 0 means "unknown": the rank is then taken as the numerical rank
// of the covariance (eigenvalues above d * eps * max).
FidResult frechet_distance(const FeatureStats& a, const FeatureStats& b);

// From features (float32 rows). stats_eigh computes the statistics first.
FidResult frechet_distance(const FeatureMatrix& a, const FeatureMatrix& b,
                           FidMethod method = FidMethod::auto_select);

// tr sqrt(S_a S_b) alone; rank_a / rank_b bound the ranks of S_a / S_b (<= 0: numerical rank).
double trace_sqrt_product(const Eigen::MatrixXd& sigma_a, const Eigen::MatrixXd& sigma_b,
                          int64_t rank_a, int64_t rank_b, int64_t* rank_used = nullptr);

}  // namespace vardp::eval
