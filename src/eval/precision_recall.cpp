#include "vardp/eval/precision_recall.hpp"

#include <algorithm>
#include <limits>
#include <vector>

#include "vardp/util/error.hpp"

namespace vardp::eval {

std::string to_string(Membership m) {
  return m == Membership::non_strict_le ? "le" : "lt";
}

Membership membership_from_string(const std::string& name) {
  if (name == "le" || name == "<=") return Membership::non_strict_le;
  if (name == "lt" || name == "<") return Membership::strict_lt;
  throw UsageError(str("unknown ball membership '", name, "' (le or lt)"));
}

namespace {

void check_ks(const std::vector<int>& ks, int64_t n, const char* set) {
  VARDP_CHECK(!ks.empty(), "k-NN metrics: no neighbourhood size given");
  for (int k : ks) {
    if (k < 1 || k > n - 1) {
      throw Error(str("neighbourhood size k = ", k, " needs 1 <= k <= N - 1 = ", n - 1), set);
    }
  }
}

inline bool inside(double d, double r, bool strict) { return strict ? d < r : d <= r; }

}  // namespace

Eigen::MatrixXd knn_radii(const FeatureMatrix& x, const std::vector<int>& ks,
                          const Eigen::RowVectorXd& shift, const PairwiseOptions& opt) {
  check_ks(ks, x.rows(), "k-NN radii");
  const int kmax = *std::max_element(ks.begin(), ks.end());
  const int64_t n = x.rows();
  Eigen::MatrixXd radii(n, static_cast<int64_t>(ks.size()));
  const int nthreads = resolve_threads(opt, n);
  std::vector<std::vector<double>> scratch(nthreads);
  std::vector<std::vector<double>> candidates(nthreads);
  for_each_sqdist_block(x, x, shift, opt, [&](SqdistBlock& b) {
    auto& buf = scratch[b.thread];
    auto& cand = candidates[b.thread];
    for (int64_t i = 0; i < b.d->rows(); ++i) {
      const double* row = b.d->row(i).data();
      // Position kmax of the sorted row (the sample itself, at 0, included) is the kmax-th nearest
      // other sample; a duplicate of the sample is a neighbour at distance 0.
      buf.assign(row, row + n);
      std::nth_element(buf.begin(), buf.begin() + kmax, buf.end());
      // Every row whose true distance can be among the kmax + 1 smallest lies within twice the
      // error bound of the expansion's (kmax+1)-th value; recompute those directly.
      const double limit = buf[kmax] + 2.0 * b.row_bound(i);
      cand.clear();
      for (int64_t j = 0; j < n; ++j) {
        if (row[j] <= limit) cand.push_back(b.direct(i, j));
      }
      std::partial_sort(cand.begin(), cand.begin() + kmax + 1, cand.end());
      for (size_t q = 0; q < ks.size(); ++q) radii(b.row0 + i, q) = cand[ks[q]];
    }
  });
  return radii;
}

ManifoldCounts manifold_counts(const FeatureMatrix& real, const FeatureMatrix& fake,
                               const ManifoldOptions& opt) {
  VARDP_CHECK(real.cols() == fake.cols(), "k-NN metrics: feature dimensions differ (real ",
              real.cols(), ", fake ", fake.cols(), ")");
  check_ks(opt.ks, real.rows(), "k-NN metrics (real set)");
  check_ks(opt.ks, fake.rows(), "k-NN metrics (fake set)");
  const bool strict = opt.membership == Membership::strict_lt;
  const int64_t nk = static_cast<int64_t>(opt.ks.size());
  const int64_t n_real = real.rows();
  const int64_t n_fake = fake.rows();
  // Centre on the real mean: translation leaves distances unchanged and shrinks the norms in the
  // |x|^2 + |y|^2 - 2 x.y expansion, hence its rounding error.
  const Eigen::RowVectorXd shift = feature_mean(real).transpose();

  ManifoldCounts c;
  c.ks = opt.ks;
  c.membership = opt.membership;
  c.real_radii = knn_radii(real, opt.ks, shift, opt.pairwise);
  c.fake_radii = knn_radii(fake, opt.ks, shift, opt.pairwise);
  c.real_in_fake_manifold.setConstant(n_real, nk, false);
  c.real_nn_fake_sqdist.setConstant(n_real, std::numeric_limits<double>::infinity());

  // Fake radii as |ks| contiguous rows for the inner loop.
  const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> fake_r =
      c.fake_radii.transpose();
  const int nthreads = resolve_threads(opt.pairwise, n_real);
  // Per-thread counts: several row blocks (real samples) touch every fake sample.
  std::vector<Eigen::Matrix<int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> counts(
      nthreads);
  for (auto& m : counts) m.setZero(nk, n_fake);

  for_each_sqdist_block(real, fake, shift, opt.pairwise, [&](SqdistBlock& b) {
    auto& cnt = counts[b.thread];
    const Eigen::VectorXd& fake_norms = *b.y_norms;
    for (int64_t i = 0; i < b.d->rows(); ++i) {
      const int64_t j = b.row0 + i;
      const double* row = b.d->row(i).data();
      const double real_norm = (*b.x_norms)(j);
      // Nearest fake sample (coverage), refined among the candidates the error bound allows.
      double nn = std::numeric_limits<double>::infinity();
      for (int64_t f = 0; f < n_fake; ++f) nn = std::min(nn, row[f]);
      const double nn_limit = nn + 2.0 * b.row_bound(i);
      nn = std::numeric_limits<double>::infinity();
      for (int64_t f = 0; f < n_fake; ++f) {
        if (row[f] <= nn_limit) nn = std::min(nn, b.direct(i, f));
      }
      c.real_nn_fake_sqdist(j) = nn;
      // Membership decisions; a distance within the error bound of a radius is recomputed.
      for (int64_t q = 0; q < nk; ++q) {
        const double rr = c.real_radii(j, q);
        const double* rf = fake_r.row(q).data();
        int32_t* cq = cnt.row(q).data();
        bool in_fake = false;
        for (int64_t f = 0; f < n_fake; ++f) {
          const double v = row[f];
          const double e = b.err_scale * (real_norm + fake_norms(f));
          double exact = -1.0;  // direct distance, computed at most once per pair
          auto decide = [&](double r) {
            if (v - r > e) return false;
            if (r - v > e) return true;
            if (exact < 0.0) exact = b.direct(i, f);
            return inside(exact, r, strict);
          };
          cq[f] += decide(rr) ? 1 : 0;
          if (!in_fake) in_fake = decide(rf[f]);
        }
        c.real_in_fake_manifold(j, q) = in_fake;
      }
    }
  });

  c.fake_in_real_balls.setZero(n_fake, nk);
  for (const auto& m : counts) c.fake_in_real_balls += m.transpose();
  return c;
}

std::vector<PrecisionRecall> precision_recall(const ManifoldCounts& c) {
  std::vector<PrecisionRecall> out;
  const double n_fake = static_cast<double>(c.fake_in_real_balls.rows());
  const double n_real = static_cast<double>(c.real_in_fake_manifold.rows());
  for (size_t q = 0; q < c.ks.size(); ++q) {
    PrecisionRecall pr;
    pr.k = c.ks[q];
    pr.precision = (c.fake_in_real_balls.col(q).array() > 0).count() / n_fake;
    pr.recall = c.real_in_fake_manifold.col(q).count() / n_real;
    out.push_back(pr);
  }
  return out;
}

std::vector<PrecisionRecall> improved_precision_recall(const FeatureMatrix& real,
                                                       const FeatureMatrix& fake,
                                                       const ManifoldOptions& opt) {
  return precision_recall(manifold_counts(real, fake, opt));
}

}  // namespace vardp::eval
