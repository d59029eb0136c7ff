// Every case of ../shared/fixtures/metric_reference: FID (both trace routes, and from the stored
// statistics), improved precision/recall for k = 3 and 5 under `<=` and `<`, density and coverage,
// against the reference implementations' values in reference.json.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "test_paths.hpp"
#include "vardp/eval/fid.hpp"
#include "vardp/eval/prdc.hpp"
#include "vardp/eval/precision_recall.hpp"
#include "vardp/eval/stats.hpp"
#include "vardp/eval/stats_io.hpp"
#include "vardp/io/h5.hpp"

namespace vardp::eval {
namespace {

using nlohmann::json;

// Case names of the fixture; CaseListMatchesFixture fails if reference.json gains or loses one.
const std::vector<std::string> kCases = {
    "gauss_d64_n2000_shift",        "gauss_d64_n500_rotated", "illcond_d256_n1500",
    "mixture_d512_real2000_fake1000", "mixture_d2048_n500_singular", "identical_d2048_n500",
    "identical_d64_n2000",          "ties_d4_lattice_n300"};

const json& reference() {
  static const json j = [] {
    std::ifstream in(test::fixture("metric_reference/reference.json"));
    if (!in) throw std::runtime_error("cannot open metric_reference/reference.json");
    return json::parse(in);
  }();
  return j;
}

std::string features_path() { return test::fixture("metric_reference/features.h5"); }

struct Case {
  json ref;
  FeatureMatrix real, fake;
  int64_t n_real() const { return real.rows(); }
  int64_t n_fake() const { return fake.rows(); }
};

// Loaded once per case (the d = 2048 ones are read by several tests).
const Case& load(const std::string& name) {
  static std::map<std::string, Case> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  Case c;
  c.ref = reference().at("cases").at(name);
  auto f = io::H5File::open(features_path());
  c.real = read_features(f.id(), c.ref.at("h5_real").get<std::string>(), f.path());
  c.fake = read_features(f.id(), c.ref.at("h5_fake").get<std::string>(), f.path());
  return cache.emplace(name, std::move(c)).first->second;
}

// Largest deviations seen, printed at the end of the run (the numbers in the report).
struct Deviations {
  std::map<std::string, double> max_abs;
  void note(const std::string& what, double dev) {
    auto& m = max_abs[what];
    m = std::max(m, std::fabs(dev));
  }
  ~Deviations() {
    for (const auto& [what, v] : max_abs) std::printf("[eval max deviation] %-34s %.3e\n", what.c_str(), v);
  }
};
Deviations& deviations() {
  static Deviations d;
  return d;
}

TEST(EvalReference, CaseListMatchesFixture) {
  std::set<std::string> in_json;
  for (const auto& [name, c] : reference().at("cases").items()) in_json.insert(name);
  EXPECT_EQ(in_json, std::set<std::string>(kCases.begin(), kCases.end()));
}

class EvalReferenceCase : public ::testing::TestWithParam<std::string> {};

double fid_tolerance(const json& ref) { return ref.at("targets").at("fid_abs_tol").get<double>(); }

TEST_P(EvalReferenceCase, FidMatchesExactValueOnBothRoutes) {
  const Case& c = load(GetParam());
  const double target = c.ref.at("targets").at("fid").get<double>();
  const double tol = fid_tolerance(c.ref);
  const bool full_rank = c.ref.at("targets").at("fid_covariances_full_rank").get<bool>();
  // The brief's bounds: 1e-6 relative with full-rank covariances, 1e-4 absolute otherwise.
  EXPECT_LE(tol, full_rank ? 1e-6 * std::max(1.0, std::fabs(target)) : 1e-4);

  for (FidMethod m : {FidMethod::auto_select, FidMethod::stats_eigh, FidMethod::features_svd}) {
    const FidResult r = frechet_distance(c.real, c.fake, m);
    EXPECT_NEAR(r.fid, target, tol) << GetParam() << " method " << to_string(m);
    deviations().note("fid/" + to_string(m) + (full_rank ? " (rel, full rank)" : " (abs, N<=d)"),
                      full_rank ? (r.fid - target) / std::max(1.0, std::fabs(target))
                                : r.fid - target);
    const json& comp = c.ref.at("fid").at("exact_components");
    EXPECT_NEAR(r.mean_sq_diff, comp.at("mean_sq_diff").get<double>(), 1e-9);
    EXPECT_NEAR(r.trace_sigma_a, comp.at("trace_sigma_real").get<double>(), 1e-9);
    EXPECT_NEAR(r.trace_sigma_b, comp.at("trace_sigma_fake").get<double>(), 1e-9);
    EXPECT_NEAR(r.trace_sqrt_product, comp.at("trace_sqrt_product").get<double>(), tol / 2);
  }
  // FID is symmetric.
  EXPECT_NEAR(frechet_distance(c.fake, c.real).fid, target, tol);
}

TEST_P(EvalReferenceCase, FidFromStoredStatistics) {
  const Case& c = load(GetParam());
  if (!c.ref.at("has_stats").get<bool>()) GTEST_SKIP() << "no stored statistics in this case";
  auto f = io::H5File::open(features_path());
  const std::string g = "/" + GetParam() + "/stats/";
  auto stored = [&](const std::string& set) {
    FeatureStats s;
    std::vector<hsize_t> dims;
    const auto mu = io::h5_read<double>(f.id(), g + "mu_" + set, &dims);
    s.mu = Eigen::Map<const Eigen::VectorXd>(mu.data(), dims[0]);
    const auto sigma = io::h5_read<double>(f.id(), g + "sigma_" + set, &dims);
    s.sigma = Eigen::Map<const Eigen::MatrixXd>(sigma.data(), dims[0], dims[1]);  // symmetric
    return s;
  };
  const FeatureStats real_ref = stored("real"), fake_ref = stored("fake");

  // Streaming statistics equal numpy's mean / cov(ddof = 1) of the float64-cast rows.
  const FeatureStats real = compute_stats(c.real, 333), fake = compute_stats(c.fake, 4096);
  const double mu_dev = std::max((real.mu - real_ref.mu).cwiseAbs().maxCoeff(),
                                 (fake.mu - fake_ref.mu).cwiseAbs().maxCoeff());
  const double sigma_dev = std::max((real.sigma - real_ref.sigma).cwiseAbs().maxCoeff(),
                                    (fake.sigma - fake_ref.sigma).cwiseAbs().maxCoeff());
  deviations().note("stats/mu (abs)", mu_dev);
  deviations().note("stats/sigma (abs)", sigma_dev);
  EXPECT_LT(mu_dev, 1e-12);
  EXPECT_LT(sigma_dev, 1e-12);

  const double target = c.ref.at("targets").at("fid").get<double>();
  const double from_stats = frechet_distance(real_ref, fake_ref).fid;  // count unknown
  EXPECT_NEAR(from_stats, target, fid_tolerance(c.ref));
  deviations().note("fid/stored stats (rel)", (from_stats - target) / std::max(1.0, target));
  // pytorch-fid's own value on the same statistics.
  EXPECT_NEAR(from_stats, c.ref.at("fid").at("pytorch_fid").get<double>(), fid_tolerance(c.ref));
}

// Exact match: compare the counts behind the shares, not the shares with a tolerance.
void expect_share(double mine, double ref, int64_t denom, const std::string& what) {
  const double dm = mine * static_cast<double>(denom);
  const double dr = ref * static_cast<double>(denom);
  EXPECT_EQ(std::llround(dm), std::llround(dr)) << what << ": " << mine << " vs " << ref;
  EXPECT_NEAR(dm, std::round(dm), 1e-9) << what;
  deviations().note("pr/" + what.substr(0, what.find(' ')) + " (abs)", mine - ref);
}

// Exact float64 brute force (both conventions, all four metrics), clovaai prdc (`<`), and
// Kynkaanniemi et al. / the paper's evaluator (`<=`, float32 and float64 paths; shares stored as
// float32 there).
TEST_P(EvalReferenceCase, PrecisionRecallDensityCoverageExact) {
  const Case& c = load(GetParam());
  const json& pr = c.ref.at("pr");
  for (Membership mem : {Membership::non_strict_le, Membership::strict_lt}) {
    ManifoldOptions opt;
    opt.ks = {3, 5};
    opt.membership = mem;
    const auto res = compute_prdc(c.real, c.fake, opt);
    ASSERT_EQ(res.size(), 2u);
    const bool le = mem == Membership::non_strict_le;
    const json& exact = pr.at("exact_f64").at(le ? "non_strict_le" : "strict_lt");
    for (const auto& m : res) {
      const std::string k = "k" + std::to_string(m.k);
      const json& r = exact.at(k);
      const std::string tag = " " + GetParam() + " " + k + " " + to_string(mem);
      expect_share(m.precision, r.at("precision").get<double>(), c.n_fake(), "precision" + tag);
      expect_share(m.recall, r.at("recall").get<double>(), c.n_real(), "recall" + tag);
      expect_share(m.density, r.at("density").get<double>(), m.k * c.n_fake(), "density" + tag);
      expect_share(m.coverage, r.at("coverage").get<double>(), c.n_real(), "coverage" + tag);
      if (!le) {
        const json& p = pr.at("prdc").at(k);
        EXPECT_DOUBLE_EQ(m.precision, p.at("precision").get<double>()) << tag;
        EXPECT_DOUBLE_EQ(m.recall, p.at("recall").get<double>()) << tag;
        EXPECT_NEAR(m.density, p.at("density").get<double>(), 1e-12) << tag;
        EXPECT_DOUBLE_EQ(m.coverage, p.at("coverage").get<double>()) << tag;
        continue;
      }
      for (const char* src : {"kynkaanniemi", "paper_evaluator"}) {
        for (const char* prec : {"fp32", "fp64"}) {
          const json& v = pr.at(src).at(prec).at(k);
          EXPECT_NEAR(m.precision, v.at("precision").get<double>(), 1e-7) << src << prec << tag;
          EXPECT_NEAR(m.recall, v.at("recall").get<double>(), 1e-7) << src << prec << tag;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(MetricReference, EvalReferenceCase, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param; });

TEST(EvalReference, IdenticalSetsGiveZeroFidAndFullScores) {
  for (const char* name : {"identical_d64_n2000", "identical_d2048_n500"}) {
    const Case& c = load(name);
    ASSERT_TRUE(c.real == c.fake) << name;
    EXPECT_NEAR(frechet_distance(c.real, c.fake).fid, 0.0, 1e-9) << name;
    EXPECT_NEAR(frechet_distance(compute_stats(c.real), compute_stats(c.fake)).fid, 0.0, 1e-9)
        << name;
    for (Membership mem : {Membership::non_strict_le, Membership::strict_lt}) {
      ManifoldOptions opt;
      opt.ks = {3, 5};
      opt.membership = mem;
      for (const auto& m : compute_prdc(c.real, c.fake, opt)) {
        EXPECT_EQ(m.precision, 1.0) << name;
        EXPECT_EQ(m.recall, 1.0) << name;
        EXPECT_EQ(m.coverage, 1.0) << name;
      }
    }
  }
}

TEST(EvalReference, TiesSeparateStrictFromNonStrict) {
  const Case& c = load("ties_d4_lattice_n300");
  ManifoldOptions le;
  le.ks = {3};
  ManifoldOptions lt = le;
  lt.membership = Membership::strict_lt;
  const auto a = compute_prdc(c.real, c.fake, le)[0];
  const auto b = compute_prdc(c.real, c.fake, lt)[0];
  EXPECT_GT(a.precision, b.precision);
  EXPECT_GT(a.density, b.density);
  EXPECT_EQ(a.recall, 1.0);
  EXPECT_LT(b.recall, 1.0);
}

TEST(EvalReference, ResultsIndependentOfBlockingAndThreads) {
  const Case& c = load("mixture_d512_real2000_fake1000");
  ManifoldOptions base;
  base.ks = {3, 5};
  base.pairwise.threads = 1;
  ManifoldOptions split = base;
  split.pairwise.threads = 3;
  split.pairwise.block_rows = 37;
  split.pairwise.block_cols = 101;
  const auto a = manifold_counts(c.real, c.fake, base);
  const auto b = manifold_counts(c.real, c.fake, split);
  // GEMM blocking may change the summation order: radii agree to rounding, decisions exactly.
  EXPECT_TRUE(a.real_radii.isApprox(b.real_radii, 1e-12));
  EXPECT_TRUE(a.fake_radii.isApprox(b.fake_radii, 1e-12));
  EXPECT_EQ(a.fake_in_real_balls, b.fake_in_real_balls);
  EXPECT_TRUE((a.real_in_fake_manifold == b.real_in_fake_manifold).all());
  EXPECT_TRUE(a.real_nn_fake_sqdist.isApprox(b.real_nn_fake_sqdist, 1e-12));
}

}  // namespace
}  // namespace vardp::eval
