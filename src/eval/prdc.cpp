#include "vardp/eval/prdc.hpp"

namespace vardp::eval {

std::vector<DensityCoverage> density_coverage(const ManifoldCounts& c) {
  const bool strict = c.membership == Membership::strict_lt;
  const int64_t n_fake = c.fake_in_real_balls.rows();
  const int64_t n_real = c.real_radii.rows();
  std::vector<DensityCoverage> out;
  for (size_t q = 0; q < c.ks.size(); ++q) {
    DensityCoverage dc;
    dc.k = c.ks[q];
    const double hits = static_cast<double>(c.fake_in_real_balls.col(q).cast<int64_t>().sum());
    dc.density = hits / (static_cast<double>(dc.k) * static_cast<double>(n_fake));
    int64_t covered = 0;
    for (int64_t j = 0; j < n_real; ++j) {
      const double d = c.real_nn_fake_sqdist(j);
      const double r = c.real_radii(j, q);
      covered += (strict ? d < r : d <= r) ? 1 : 0;
    }
    dc.coverage = static_cast<double>(covered) / static_cast<double>(n_real);
    out.push_back(dc);
  }
  return out;
}

std::vector<Prdc> prdc_from_counts(const ManifoldCounts& counts) {
  const auto pr = precision_recall(counts);
  const auto dc = density_coverage(counts);
  std::vector<Prdc> out(pr.size());
  for (size_t q = 0; q < pr.size(); ++q) {
    out[q].k = pr[q].k;
    out[q].precision = pr[q].precision;
    out[q].recall = pr[q].recall;
    out[q].density = dc[q].density;
    out[q].coverage = dc[q].coverage;
  }
  return out;
}

std::vector<Prdc> compute_prdc(const FeatureMatrix& real, const FeatureMatrix& fake,
                               const ManifoldOptions& opt) {
  return prdc_from_counts(manifold_counts(real, fake, opt));
}

}  // namespace vardp::eval
