#include "vardp/eval/kid.hpp"

#include <cmath>
#include <vector>

#include "vardp/util/error.hpp"

namespace vardp::eval {

namespace {

inline double poly_kernel(double dot, double gamma, double coef0, int degree) {
  const double base = gamma * dot + coef0;
  double v = 1.0;
  for (int i = 0; i < degree; ++i) v *= base;
  return v;
}

// Sum of k(x_i, y_j) over all pairs (i != j when x and y are the same set).
double kernel_sum(const FeatureMatrix& x, const FeatureMatrix& y, const KidOptions& opt,
                  double gamma) {
  const bool same = &x == &y;
  const int nthreads = resolve_threads(opt.pairwise, x.rows());
  std::vector<double> partial(nthreads, 0.0);
  const Eigen::RowVectorXd no_shift;
  for_each_gram_block(x, y, no_shift, opt.pairwise, [&](int t, int64_t row0, DoubleTile& tile) {
    double block = 0.0;  // summed per block, then added, to limit rounding growth
    for (int64_t i = 0; i < tile.rows(); ++i) {
      double row_sum = 0.0;
      for (int64_t j = 0; j < tile.cols(); ++j) {
        if (same && j == row0 + i) continue;
        row_sum += poly_kernel(tile(i, j), gamma, opt.coef0, opt.degree);
      }
      block += row_sum;
    }
    partial[t] += block;
  });
  double sum = 0.0;
  for (double p : partial) sum += p;
  return sum;
}

}  // namespace

KidResult kernel_inception_distance(const FeatureMatrix& real, const FeatureMatrix& fake,
                                    const KidOptions& opt) {
  VARDP_CHECK(real.cols() == fake.cols(), "KID: feature dimensions differ (real ", real.cols(),
              ", fake ", fake.cols(), ")");
  VARDP_CHECK(real.rows() >= 2 && fake.rows() >= 2, "KID needs at least 2 samples per set (got ",
              real.rows(), " and ", fake.rows(), ")");
  VARDP_CHECK(opt.degree >= 1, "KID: polynomial degree must be >= 1, got ", opt.degree);
  const double gamma = opt.gamma > 0.0 ? opt.gamma : 1.0 / static_cast<double>(real.cols());
  const double m = static_cast<double>(real.rows());
  const double n = static_cast<double>(fake.rows());
  KidResult r;
  r.mean_k_real = kernel_sum(real, real, opt, gamma) / (m * (m - 1.0));
  r.mean_k_fake = kernel_sum(fake, fake, opt, gamma) / (n * (n - 1.0));
  r.mean_k_cross = kernel_sum(real, fake, opt, gamma) / (m * n);
  r.kid = r.mean_k_real + r.mean_k_fake - 2.0 * r.mean_k_cross;
  return r;
}

}  // namespace vardp::eval
