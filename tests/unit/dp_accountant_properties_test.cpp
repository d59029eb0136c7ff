// Properties of the accountants that do not need reference values: monotonicity, composition,
// agreement with the exact Gaussian mechanism, breakdown detection, numerical building blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <random>
#include <vector>

#include "vardp/dp/accountant.hpp"
#include "vardp/dp/accountant_gdp.hpp"
#include "vardp/dp/calibration.hpp"
#include "vardp/dp/prv.hpp"
#include "vardp/dp/prv_fft.hpp"
#include "vardp/dp/rdp.hpp"

namespace vardp::dp {
namespace {

constexpr double kPi = 3.14159265358979323846;

double eps_of(AccountantKind kind, double q, double sigma, int64_t steps, double delta = 1e-5) {
  return compute_epsilon(q, sigma, steps, delta, kind).epsilon;
}

// ---- monotonicity ---------------------------------------------------------------------------

class Monotonicity : public ::testing::TestWithParam<AccountantKind> {};

TEST_P(Monotonicity, EpsilonGrowsWithStepsAndRateAndShrinksWithSigma) {
  const AccountantKind kind = GetParam();
  double prev = 0.0;
  for (int64_t steps : {10, 100, 1000, 4000}) {
    const double e = eps_of(kind, 0.02, 1.0, steps);
    EXPECT_GT(e, prev) << "steps " << steps;
    prev = e;
  }
  prev = 0.0;
  for (double q : {0.002, 0.01, 0.04, 0.16}) {
    const double e = eps_of(kind, q, 1.0, 200);
    EXPECT_GT(e, prev) << "q " << q;
    prev = e;
  }
  prev = std::numeric_limits<double>::infinity();
  for (double sigma : {0.7, 1.0, 1.5, 3.0, 8.0}) {
    const double e = eps_of(kind, 0.02, sigma, 500);
    EXPECT_LT(e, prev) << "sigma " << sigma;
    prev = e;
  }
  // A smaller delta costs more epsilon.
  EXPECT_GT(compute_epsilon(0.02, 1.0, 500, 1e-7, kind).epsilon,
            compute_epsilon(0.02, 1.0, 500, 1e-4, kind).epsilon);
}

INSTANTIATE_TEST_SUITE_P(Accountants, Monotonicity,
                         ::testing::Values(AccountantKind::rdp, AccountantKind::prv,
                                           AccountantKind::gdp),
                         [](const auto& info) { return to_string(info.param); });

// ---- RDP --------------------------------------------------------------------------------------

TEST(Rdp, SpecialCases) {
  EXPECT_EQ(rdp_subsampled_gaussian(0.0, 1.0, 3.0), 0.0);
  EXPECT_TRUE(std::isinf(rdp_subsampled_gaussian(0.1, 0.0, 3.0)));
  EXPECT_DOUBLE_EQ(rdp_subsampled_gaussian(1.0, 2.0, 5.0), 5.0 / 8.0);
  EXPECT_THROW(rdp_subsampled_gaussian(0.1, 1.0, 1.0), Error);
  EXPECT_THROW(rdp_subsampled_gaussian(1.5, 1.0, 2.0), Error);
  // Subsampling only helps: RDP(q) <= RDP(1) = alpha / (2 sigma^2), at every default order.
  for (double a : default_rdp_orders()) {
    EXPECT_LE(rdp_subsampled_gaussian(0.3, 1.3, a), a / (2 * 1.3 * 1.3) * (1 + 1e-12)) << a;
  }
}

TEST(Rdp, IntegerOrderAgreesWithFractionalNeighbours) {
  // The integer-order sum and the fractional-order series describe one continuous function.
  for (double sigma : {0.7, 1.1, 3.0}) {
    const double at3 = rdp_subsampled_gaussian(0.05, sigma, 3.0);
    const double below = rdp_subsampled_gaussian(0.05, sigma, 3.0 - 1e-7);
    const double above = rdp_subsampled_gaussian(0.05, sigma, 3.0 + 1e-7);
    EXPECT_LT(below, at3);
    EXPECT_GT(above, at3);
    EXPECT_NEAR(below, at3, 1e-5 * at3);
    EXPECT_NEAR(above, at3, 1e-5 * at3);
  }
}

TEST(Rdp, CompositionIsAdditiveOverSegments) {
  const auto& orders = default_rdp_orders();
  const Segment a{0.01, 1.1, 300}, b{0.05, 2.0, 70};
  const auto ra = rdp_subsampled_gaussian(a, orders);
  const auto rb = rdp_subsampled_gaussian(b, orders);
  const auto rab = rdp_compose({a, b}, orders);
  for (std::size_t i = 0; i < orders.size(); ++i) EXPECT_DOUBLE_EQ(rab[i], ra[i] + rb[i]);
  // Splitting one segment changes nothing.
  const auto split = rdp_compose({{0.01, 1.1, 100}, {0.01, 1.1, 200}}, orders);
  for (std::size_t i = 0; i < orders.size(); ++i) EXPECT_NEAR(split[i], ra[i], 1e-12 * ra[i]);
}

TEST(Rdp, ReportsBestOrderAtTheEdge) {
  // Tiny noise (epsilon in the hundreds): the minimiser is the smallest order.
  const RdpEpsilon big = rdp_epsilon({{0.251, 0.3, 318}}, 1.0 / 1020);
  EXPECT_TRUE(big.best_order_at_edge);
  EXPECT_EQ(big.best_order, default_rdp_orders().front());
  // Huge noise, one step: the minimiser is the largest order.
  const RdpEpsilon tiny = rdp_epsilon({{0.01, 50.0, 1}}, 1e-5);
  EXPECT_TRUE(tiny.best_order_at_edge);
  EXPECT_EQ(tiny.best_order, default_rdp_orders().back());
  // The usual regime is interior.
  EXPECT_FALSE(rdp_epsilon({{0.01, 1.0, 1000}}, 1e-5).best_order_at_edge);
}

TEST(Rdp, EmptyCompositionSpendsNothing) {
  EXPECT_EQ(rdp_epsilon({}, 1e-5).epsilon, 0.0);
  EXPECT_EQ(rdp_epsilon({{0.1, 1.0, 0}}, 1e-5).epsilon, 0.0);
  EXPECT_EQ(prv_epsilon({}, 1e-5).upper, 0.0);
}

TEST(Rdp, LogSpaceHelpers) {
  EXPECT_NEAR(detail::log_add(std::log(2.0), std::log(3.0)), std::log(5.0), 1e-15);
  EXPECT_NEAR(detail::log_sub(std::log(5.0), std::log(3.0)), std::log(2.0), 1e-15);
  EXPECT_EQ(detail::log_sub(1.0, 1.0), -std::numeric_limits<double>::infinity());
  EXPECT_THROW(detail::log_sub(1.0, 2.0), Error);
  EXPECT_NEAR(detail::log_add(1000.0, 1000.0), 1000.0 + std::log(2.0), 1e-12);
  // log erfc: direct below 25, asymptotic beyond; continuous across the switch.
  for (double x : {-3.0, 0.0, 1.0, 5.0, 20.0, 24.9}) {
    EXPECT_NEAR(detail::log_erfc(x), std::log(std::erfc(x)), 1e-13 * std::fabs(std::log(std::erfc(x))) + 1e-15);
  }
  EXPECT_NEAR(detail::log_erfc(25.0 - 1e-12), detail::log_erfc(25.0), 1e-9);
  EXPECT_TRUE(std::isfinite(detail::log_erfc(1e4)));
  EXPECT_NEAR(detail::log_erfc(1e4), -1e8 - std::log(1e4) - 0.5 * std::log(kPi), 1e-6);
}

// ---- PRV --------------------------------------------------------------------------------------

TEST(Prv, CdfAndSurvivalAreConsistent) {
  const PoissonSubsampledGaussianPrv prv(0.04, 1.5);
  double prev = 0.0;
  for (double t = -2.0; t <= 12.0; t += 0.01) {
    double c, s;
    prv.cdf_sf(t, &c, &s);
    EXPECT_NEAR(c + s, 1.0, 1e-15) << t;
    EXPECT_GE(c, prev) << t;
    prev = c;
  }
  EXPECT_EQ(prv.cdf(std::log(1 - 0.04) - 1e-9), 0.0);  // no loss below log(1-q)
  // The upper tail keeps its relative precision where 1 - cdf has none left.
  EXPECT_EQ(1.0 - prv.cdf(15.0), 0.0);
  EXPECT_GT(prv.sf(15.0), 0.0);
  EXPECT_LT(prv.sf(15.0), 1e-100);
}

// E[Y] of the PRV via the mechanism: Y = log(1 - q + q exp((2X - 1) / (2 sigma^2))) with X drawn
// from the mixture q N(1, sigma^2) + (1-q) N(0, sigma^2) (composite Simpson in x).
double prv_mean_by_simpson(double q, double sigma) {
  const double a = -14 * sigma, b = 1 + 14 * sigma;
  const long n = 400000;
  const double h = (b - a) / n;
  long double acc = 0.0L;
  for (long i = 0; i <= n; ++i) {
    const double x = a + h * i;
    const double w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
    const double dens = (q * std::exp(-(x - 1) * (x - 1) / (2 * sigma * sigma)) +
                         (1 - q) * std::exp(-x * x / (2 * sigma * sigma))) /
                        (sigma * std::sqrt(2 * kPi));
    const double u = (2 * x - 1) / (2 * sigma * sigma);
    const double y = u > 0 ? u + std::log(q) + std::log1p((1 - q) / q * std::exp(-u))
                           : std::log(1 - q + q * std::exp(u));
    acc += w * dens * y;
  }
  return static_cast<double>(acc * h / 3);
}

TEST(Prv, TruncatedMeanMatchesIndependentIntegration) {
  for (auto [q, sigma, half] : {std::tuple{0.01, 1.0, 9.6}, std::tuple{0.04, 1.5, 9.0},
                                std::tuple{0.251, 1.0, 20.0}, std::tuple{0.251, 0.56, 120.0}}) {
    const PoissonSubsampledGaussianPrv prv(q, sigma);
    const double want = prv_mean_by_simpson(q, sigma);
    EXPECT_NEAR(prv_truncated_mean(prv, -half, half), want, 1e-13 + 1e-11 * std::fabs(want))
        << "q=" << q << " sigma=" << sigma;
  }
}

TEST(Prv, DomainIsAlignedAndEven) {
  const PrvDomain d = PrvDomain::aligned(-7.3, 7.3, 0.01);
  EXPECT_EQ(d.size % 2, 0);
  EXPECT_NEAR(d.dt(), 0.01, 1e-12);
  EXPECT_NEAR(std::remainder(d.t_min, 0.01), 0.0, 1e-9);
  EXPECT_LE(d.t_min, -7.3);
  EXPECT_GE(d.t_max, 7.3);
  EXPECT_EQ(d.t(d.size - 1), d.t_max);
}

TEST(Prv, DiscretisationKeepsMassAndMean) {
  const PoissonSubsampledGaussianPrv prv(0.05, 1.2);
  const PrvDomain d = PrvDomain::aligned(-10, 10, 1e-3);
  const DiscretePrv dp = discretize(prv, d);
  long double mass = 0, mean = 0;
  for (int64_t i = 0; i < dp.domain.size; ++i) {
    mass += dp.pmf[i];
    mean += dp.pmf[i] * dp.domain.t(i);
  }
  EXPECT_NEAR(static_cast<double>(mass), 1.0, 1e-14);
  EXPECT_NEAR(static_cast<double>(mean), prv_truncated_mean(prv, d.t_min, d.t_max), 1e-12);
  EXPECT_LT(std::fabs(dp.domain.shifts), d.dt() / 2);
}

// For q = 1 the mechanism is the plain Gaussian mechanism, whose exact epsilon is the
// mu-GDP dual with mu = sqrt(T) / sigma; PRV must bracket it, also at epsilon in the hundreds.
TEST(Prv, BracketsTheExactGaussianMechanism) {
  for (auto [sigma, steps] : {std::pair{1.0, 100L}, std::pair{0.5, 10L}, std::pair{0.2, 10L}}) {
    const double delta = 1e-5;
    const double mu = std::sqrt(static_cast<double>(steps)) / sigma;
    double lo = 0, hi = 5000;
    for (int i = 0; i < 200; ++i) {
      const double mid = (lo + hi) / 2;
      (gdp_delta(mid, mu) > delta ? lo : hi) = mid;
    }
    const PrvEpsilon e = prv_epsilon({{1.0, sigma, steps}}, delta);
    EXPECT_LE(e.lower, lo) << "sigma " << sigma;
    EXPECT_GE(e.upper, lo) << "sigma " << sigma;
    EXPECT_LT(e.upper - e.lower, 0.1);
    EXPECT_LT(e.upper, rdp_epsilon({{1.0, sigma, steps}}, delta).epsilon);
  }
}

TEST(Prv, HeterogeneousComposition) {
  const double delta = 1e-5;
  // Splitting a segment in two is the same mechanism.
  const PrvEpsilon whole = prv_epsilon({{0.02, 1.0, 600}}, delta);
  const PrvEpsilon split = prv_epsilon({{0.02, 1.0, 250}, {0.02, 1.0, 350}}, delta);
  EXPECT_NEAR(split.upper, whole.upper, 1e-6);
  // Different segments: at least what each part spends, at most the RDP bound, and the order of
  // the segments does not matter.
  const std::vector<Segment> mixed{{0.02, 1.0, 300}, {0.05, 1.6, 200}, {0.01, 0.8, 400}};
  const PrvEpsilon e = prv_epsilon(mixed, delta);
  for (const auto& s : mixed) EXPECT_GT(e.upper, prv_epsilon({s}, delta).lower);
  EXPECT_LT(e.upper, rdp_epsilon(mixed, delta).epsilon);
  const PrvEpsilon reversed = prv_epsilon({mixed[2], mixed[1], mixed[0]}, delta);
  EXPECT_NEAR(reversed.upper, e.upper, 1e-6);
}

TEST(Prv, ReportsWhenItCannotGiveABound) {
  auto reason_of = [](const std::vector<Segment>& s, double delta, PrvOptions o) {
    try {
      prv_epsilon(s, delta, o);
    } catch (const PrvBreakdownError& e) {
      return e.reason();
    }
    ADD_FAILURE() << "no PrvBreakdownError";
    return PrvBreakdownError::Reason::inconsistent;
  };
  // Tiny noise at the paper's rate and length needs a huge grid (epsilon ~ 1000).
  EXPECT_EQ(reason_of({{0.251, 0.2, 717}}, 1.0 / 1020, {}),
            PrvBreakdownError::Reason::domain_too_large);
  PrvOptions small;
  small.max_domain_size = 1000;
  EXPECT_EQ(reason_of({{0.01, 1.0, 100}}, 1e-5, small), PrvBreakdownError::Reason::domain_too_large);
  // delta at the level of floating-point error.
  EXPECT_EQ(reason_of({{0.01, 2.0, 10}}, 1e-16, {}), PrvBreakdownError::Reason::delta_too_small);
  // The eps(delta) inversion refuses distributions whose answer is not inside the grid.
  DiscretePrv d;
  d.domain = PrvDomain::aligned(-5, 5, 0.01);
  d.pmf.assign(static_cast<std::size_t>(d.domain.size), 0.0);
  d.pmf.back() = 1.0;  // all loss at the upper edge
  EXPECT_THROW(prv_epsilon_bounds(d, 1e-5, 1e-8, 0.01), PrvBreakdownError);
  d.pmf.back() = 0.0;
  d.pmf.front() = 1.0;  // all loss at the lower edge: delta is 0 everywhere
  EXPECT_THROW(prv_epsilon_bounds(d, 1e-5, 1e-8, 0.01), PrvBreakdownError);
}

TEST(Prv, NoNoiseMeansNoPrivacy) {
  EXPECT_TRUE(std::isinf(prv_epsilon({{0.1, 0.0, 10}}, 1e-5).upper));
  EXPECT_EQ(prv_epsilon({{0.0, 1.0, 10}}, 1e-5).upper, 0.0);
}

TEST(Prv, DeltaOfTheDiscretePrvInvertsEpsilon) {
  const double delta = 1e-5;
  PrvOptions o;
  const PrvEpsilon e = prv_epsilon({{0.02, 1.0, 300}}, delta, o);
  // Recompose by hand and check delta(estimate) == delta.
  const double half = prv_safe_half_width({{0.02, 1.0, 300}}, 0.01, delta / 1000);
  const PrvDomain dom = PrvDomain::aligned(-half, half, prv_mesh_size(300, 0.01, delta / 1000));
  const DiscretePrv one = discretize(PoissonSubsampledGaussianPrv(0.02, 1.0), dom);
  const DiscretePrv all = compose({one}, {300});
  EXPECT_NEAR(prv_delta(all, e.estimate), delta, 1e-9);
}

// ---- FFT ----------------------------------------------------------------------------------------

TEST(PrvFft, RealTransformMatchesNaiveDft) {
  std::mt19937 rng(7);
  std::normal_distribution<double> normal;
  for (std::size_t n : {2u, 6u, 10u, 64u, 98u, 2u * 499u, 1024u}) {
    std::vector<double> x(n);
    for (auto& v : x) v = normal(rng);
    const fft::RealFft plan(n);
    const auto spectrum = plan.forward(x);
    ASSERT_EQ(spectrum.size(), n / 2 + 1);
    for (std::size_t k = 0; k <= n / 2; ++k) {
      long double re = 0, im = 0;
      for (std::size_t j = 0; j < n; ++j) {
        const long double a = -2.0L * kPi * static_cast<long double>((j * k) % n) / n;
        re += x[j] * std::cos(a);
        im += x[j] * std::sin(a);
      }
      EXPECT_NEAR(spectrum[k].real(), static_cast<double>(re), 1e-12 * n) << n << " " << k;
      EXPECT_NEAR(spectrum[k].imag(), static_cast<double>(im), 1e-12 * n) << n << " " << k;
    }
    const auto back = plan.inverse(spectrum);
    for (std::size_t j = 0; j < n; ++j) EXPECT_NEAR(back[j], x[j], 1e-13) << n;
  }
  EXPECT_THROW(fft::RealFft(7), Error);
}

TEST(PrvFft, ConvolveSameMatchesDirectSum) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u;
  for (auto [na, nb] : {std::pair{8, 8}, std::pair{10, 4}, std::pair{7, 7}, std::pair{100, 100}}) {
    std::vector<double> a(na), b(nb);
    for (auto& v : a) v = u(rng);
    for (auto& v : b) v = u(rng);
    const auto got = fft::convolve_same(a, b);
    ASSERT_EQ(got.size(), a.size());
    const int start = (nb - 1) / 2;
    for (int i = 0; i < na; ++i) {
      double want = 0;
      for (int j = 0; j < nb; ++j) {
        const int k = i + start - j;
        if (k >= 0 && k < na) want += a[k] * b[j];
      }
      EXPECT_NEAR(got[i], want, 1e-12) << na << "x" << nb << " at " << i;
    }
  }
}

// ---- calibration --------------------------------------------------------------------------------

TEST(Calibration, ResultMeetsTheTarget) {
  for (AccountantKind kind : {AccountantKind::rdp, AccountantKind::prv}) {
    CalibrationRequest req;
    req.target_epsilon = 3.0;
    req.delta = 1e-5;
    req.sample_rate = 0.02;
    req.steps = 400;
    req.accountant = kind;
    const CalibrationResult r = calibrate_noise_multiplier(req);
    const double eps = compute_epsilon(0.02, r.noise_multiplier, 400, 1e-5, kind).epsilon;
    EXPECT_LE(eps, 3.0) << to_string(kind);
    EXPECT_LE(3.0 - eps, 0.01) << to_string(kind);
    EXPECT_DOUBLE_EQ(eps, r.report.epsilon);
    EXPECT_GT(r.evaluations, 1);
  }
}

TEST(Gdp, ComposesMuAndRefusesEpsilonBeyondItsBracket) {
  // mu^2 adds over segments.
  const double a = gdp_mu_poisson({{0.01, 1.0, 100}});
  const double b = gdp_mu_poisson({{0.02, 2.0, 50}});
  EXPECT_NEAR(gdp_mu_poisson({{0.01, 1.0, 100}, {0.02, 2.0, 50}}), std::hypot(a, b), 1e-15);
  EXPECT_NEAR(gdp_delta(gdp_epsilon_from_mu(1.3, 1e-5), 1.3), 1e-5, 1e-12);
  EXPECT_THROW(gdp_epsilon({{0.251, 0.3, 318}}, 1e-3), GdpOutOfRangeError);
  EXPECT_FALSE(is_guarantee(AccountantKind::gdp));
  EXPECT_FALSE(compute_epsilon(0.01, 1.0, 100, 1e-5, AccountantKind::gdp).guarantee);
}

TEST(Calibration, RejectsImpossibleBudgets) {
  CalibrationRequest req;
  req.target_epsilon = 1e-9;
  req.delta = 1e-5;
  req.sample_rate = 1.0;
  req.steps = 1000;
  EXPECT_THROW(calibrate_noise_multiplier(req), Error);
  req.target_epsilon = -1;
  EXPECT_THROW(calibrate_noise_multiplier(req), Error);
}

TEST(Calibration, PrvBreakdownsAreTreatedAsAboveTarget) {
  // With a tiny grid limit every small-sigma probe breaks down; the answer is still certified.
  CalibrationRequest req;
  req.target_epsilon = 2.0;
  req.delta = 1e-5;
  req.sample_rate = 0.01;
  req.steps = 200;
  req.accountant = AccountantKind::prv;
  req.options.prv.max_domain_size = 60000;
  const CalibrationResult r = calibrate_noise_multiplier(req);
  EXPECT_GT(r.prv_breakdowns, 0);
  EXPECT_LE(r.report.epsilon, 2.0);
  const CalibrationResult free = [&] {
    CalibrationRequest unrestricted = req;
    unrestricted.options.prv.max_domain_size = int64_t{1} << 24;
    return calibrate_noise_multiplier(unrestricted);
  }();
  EXPECT_GE(r.noise_multiplier, free.noise_multiplier);
}

}  // namespace
}  // namespace vardp::dp
