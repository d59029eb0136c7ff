#include "vardp/eval/fid.hpp"

#include <Eigen/Eigenvalues>
#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <limits>

#include "vardp/util/error.hpp"

namespace vardp::eval {

namespace {

// Rank bound of a sample covariance from its sample count (<= 0 or unknown: no bound).
int64_t count_rank_bound(int64_t count, int64_t dim) {
  return count >= 2 ? std::min<int64_t>(count - 1, dim) : dim;
}

// Number of eigenvalues (ascending order) above the numerical-rank threshold d * eps * max.
int64_t numerical_rank(const Eigen::VectorXd& ascending) {
  const int64_t d = ascending.size();
  if (d == 0) return 0;
  const double top = ascending(d - 1);
  if (!(top > 0.0)) return 0;
  const double tol = static_cast<double>(d) * std::numeric_limits<double>::epsilon() * top;
  int64_t r = 0;
  for (int64_t i = d - 1; i >= 0 && ascending(i) > tol; --i) ++r;
  return r;
}

Eigen::MatrixXd centred_scaled(const FeatureMatrix& x, Eigen::VectorXd* mean) {
  Eigen::MatrixXd a = x.cast<double>();
  const Eigen::RowVectorXd m = a.colwise().mean();
  a.rowwise() -= m;
  a /= std::sqrt(static_cast<double>(x.rows() - 1));
  *mean = m.transpose();
  return a;
}

}  // namespace

std::string to_string(FidMethod m) {
  switch (m) {
    case FidMethod::auto_select: return "auto";
    case FidMethod::stats_eigh: return "stats_eigh";
    case FidMethod::features_svd: return "features_svd";
  }
  return "unknown";
}

FidMethod fid_method_from_string(const std::string& name) {
  if (name == "auto") return FidMethod::auto_select;
  if (name == "stats_eigh") return FidMethod::stats_eigh;
  if (name == "features_svd") return FidMethod::features_svd;
  throw UsageError(str("unknown FID method '", name, "' (auto, stats_eigh, features_svd)"));
}

double trace_sqrt_product(const Eigen::MatrixXd& sigma_a, const Eigen::MatrixXd& sigma_b,
                          int64_t rank_a, int64_t rank_b, int64_t* rank_used) {
  const int64_t d = sigma_a.rows();
  VARDP_CHECK(sigma_a.cols() == d && sigma_b.rows() == d && sigma_b.cols() == d,
              "trace_sqrt_product: covariance shapes differ (", sigma_a.rows(), "x", sigma_a.cols(),
              " vs ", sigma_b.rows(), "x", sigma_b.cols(), ")");
  // The product's eigenvalues are symmetric in (a, b); root the covariance of smaller rank so
  // that the reduced matrix below is as small as possible.
  const bool swap = rank_b > 0 && (rank_a <= 0 || rank_b < rank_a);
  const Eigen::MatrixXd& root_of = swap ? sigma_b : sigma_a;
  const Eigen::MatrixXd& other = swap ? sigma_a : sigma_b;
  const int64_t bound_root = (swap ? rank_b : rank_a) > 0 ? (swap ? rank_b : rank_a) : d;
  const int64_t bound_other = (swap ? rank_a : rank_b) > 0 ? (swap ? rank_a : rank_b) : d;

  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig_root(root_of);
  VARDP_CHECK(eig_root.info() == Eigen::Success, "trace_sqrt_product: eigendecomposition failed");
  const Eigen::VectorXd& lam = eig_root.eigenvalues();  // ascending
  const int64_t r = std::min({bound_root, numerical_rank(lam), d});
  if (r == 0) {
    if (rank_used) *rank_used = 0;
    return 0.0;
  }
  // sqrt(S) = W W^T with W = V_r diag(sqrt(lambda_r)); the nonzero eigenvalues of
  // sqrt(S) S' sqrt(S) are those of the r x r matrix W^T S' W.
  Eigen::MatrixXd w = eig_root.eigenvectors().rightCols(r);
  for (int64_t j = 0; j < r; ++j) w.col(j) *= std::sqrt(std::max(lam(d - r + j), 0.0));
  Eigen::MatrixXd m = w.transpose() * other * w;
  m = 0.5 * (m + m.transpose()).eval();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig_m(m, Eigen::EigenvaluesOnly);
  VARDP_CHECK(eig_m.info() == Eigen::Success, "trace_sqrt_product: eigendecomposition failed");
  const Eigen::VectorXd& mu = eig_m.eigenvalues();  // ascending
  const int64_t keep = std::min<int64_t>(r, bound_other);
  double sum = 0.0;
  for (int64_t i = r - 1; i >= r - keep; --i) sum += std::sqrt(std::max(mu(i), 0.0));
  if (rank_used) *rank_used = keep;
  return sum;
}

FidResult frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  check_stats(a, "FID statistics (first set)");
  check_stats(b, "FID statistics (second set)");
  VARDP_CHECK(a.dim() == b.dim(), "FID: feature dimensions differ (", a.dim(), " vs ", b.dim(),
              ")");
  const int64_t d = a.dim();
  FidResult r;
  r.method = FidMethod::stats_eigh;
  r.mean_sq_diff = (a.mu - b.mu).squaredNorm();
  r.trace_sigma_a = a.sigma.trace();
  r.trace_sigma_b = b.sigma.trace();
  const int64_t rank_a = a.count > 0 ? count_rank_bound(a.count, d) : 0;
  const int64_t rank_b = b.count > 0 ? count_rank_bound(b.count, d) : 0;
  r.trace_sqrt_product = trace_sqrt_product(a.sigma, b.sigma, rank_a, rank_b, &r.rank_used);
  r.fid = r.mean_sq_diff + r.trace_sigma_a + r.trace_sigma_b - 2.0 * r.trace_sqrt_product;
  return r;
}

FidResult frechet_distance(const FeatureMatrix& a, const FeatureMatrix& b, FidMethod method) {
  VARDP_CHECK(a.cols() == b.cols(), "FID: feature dimensions differ (", a.cols(), " vs ", b.cols(),
              ")");
  VARDP_CHECK(a.rows() >= 2 && b.rows() >= 2, "FID needs at least 2 samples per set (got ",
              a.rows(), " and ", b.rows(), ")");
  const int64_t d = a.cols();
  if (method == FidMethod::auto_select) {
    // Both routes are exact (stats_eigh through the rank restriction); pick the cheaper one:
    // an SVD of the N_a x N_b cross-product against eigendecompositions of d x d matrices.
    const double na = static_cast<double>(a.rows()), nb = static_cast<double>(b.rows());
    const double dd = static_cast<double>(d);
    method = na * nb * std::min(na, nb) < dd * dd * dd ? FidMethod::features_svd
                                                       : FidMethod::stats_eigh;
  }
  if (method == FidMethod::stats_eigh) return frechet_distance(compute_stats(a), compute_stats(b));

  // tr sqrt(S_a S_b) = sum of singular values of A B^T (S_a = A^T A, S_b = B^T B): the nonzero
  // eigenvalues of A^T A B^T B are those of (A B^T)(A B^T)^T. No square root of rounding noise.
  Eigen::VectorXd mu_a, mu_b;
  const Eigen::MatrixXd ca = centred_scaled(a, &mu_a);
  const Eigen::MatrixXd cb = centred_scaled(b, &mu_b);
  const Eigen::MatrixXd cross = ca * cb.transpose();
  Eigen::BDCSVD<Eigen::MatrixXd> svd(cross);
  VARDP_CHECK(svd.info() == Eigen::Success, "FID: SVD of the cross-product failed");
  FidResult r;
  r.method = FidMethod::features_svd;
  r.mean_sq_diff = (mu_a - mu_b).squaredNorm();
  r.trace_sigma_a = ca.squaredNorm();
  r.trace_sigma_b = cb.squaredNorm();
  r.trace_sqrt_product = svd.singularValues().sum();
  r.rank_used = svd.singularValues().size();
  r.fid = r.mean_sq_diff + r.trace_sigma_a + r.trace_sigma_b - 2.0 * r.trace_sqrt_product;
  return r;
}

}  // namespace vardp::eval
