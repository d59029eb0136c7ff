// CLT Gaussian-DP accounting (see accountant_gdp.hpp): an approximation kept for comparison.
#include "vardp/dp/accountant_gdp.hpp"

#include <cmath>
#include <functional>
#include <limits>

#include "vardp/util/error.hpp"

namespace vardp::dp {
namespace {

double normal_cdf(double x) { return 0.5 * std::erfc(-x / 1.41421356237309504880); }

// Brent's root finder (inverse quadratic interpolation / secant with bisection safeguard) on a
// sign-changing bracket; tolerances as scipy's brentq defaults (xtol 2e-12, rtol 4 eps).
double brent_root(const std::function<double(double)>& f, double a, double b) {
  constexpr double kXtol = 2e-12;
  constexpr double kRtol = 8.881784197001252e-16;
  constexpr int kMaxIter = 100;
  double x_prev = a, x_cur = b;
  double f_prev = f(x_prev), f_cur = f(x_cur);
  if (f_prev == 0.0) return x_prev;
  if (f_cur == 0.0) return x_cur;
  if (std::signbit(f_prev) == std::signbit(f_cur)) {
    throw Error(str("no sign change on [", a, ", ", b, "] (f=", f_prev, ", ", f_cur, ")"),
                "gdp epsilon");
  }
  double x_blk = 0.0, f_blk = 0.0, s_prev = 0.0, s_cur = 0.0;
  for (int it = 0; it < kMaxIter; ++it) {
    if (f_prev != 0.0 && f_cur != 0.0 && std::signbit(f_prev) != std::signbit(f_cur)) {
      x_blk = x_prev;  // keep the bracket [x_cur, x_blk]
      f_blk = f_prev;
      s_prev = s_cur = x_cur - x_prev;
    }
    if (std::fabs(f_blk) < std::fabs(f_cur)) {  // x_cur is the best estimate
      x_prev = x_cur; x_cur = x_blk; x_blk = x_prev;
      f_prev = f_cur; f_cur = f_blk; f_blk = f_prev;
    }
    const double tol = (kXtol + kRtol * std::fabs(x_cur)) / 2.0;
    const double s_bis = (x_blk - x_cur) / 2.0;
    if (f_cur == 0.0 || std::fabs(s_bis) < tol) return x_cur;
    if (std::fabs(s_prev) > tol && std::fabs(f_cur) < std::fabs(f_prev)) {
      double s_try;
      if (x_prev == x_blk) {  // secant
        s_try = -f_cur * (x_cur - x_prev) / (f_cur - f_prev);
      } else {  // inverse quadratic through the three points
        const double d_prev = (f_prev - f_cur) / (x_prev - x_cur);
        const double d_blk = (f_blk - f_cur) / (x_blk - x_cur);
        s_try = -f_cur * (f_blk * d_blk - f_prev * d_prev) / (d_blk * d_prev * (f_blk - f_prev));
      }
      if (2.0 * std::fabs(s_try) < std::fmin(std::fabs(s_prev), 3.0 * std::fabs(s_bis) - tol)) {
        s_prev = s_cur;
        s_cur = s_try;
      } else {
        s_prev = s_cur = s_bis;
      }
    } else {
      s_prev = s_cur = s_bis;
    }
    x_prev = x_cur;
    f_prev = f_cur;
    x_cur += std::fabs(s_cur) > tol ? s_cur : (s_bis > 0.0 ? tol : -tol);
    f_cur = f(x_cur);
  }
  throw Error("Brent's method did not converge", "gdp epsilon");
}

}  // namespace

double gdp_mu_poisson(const std::vector<Segment>& segments) {
  double mu2 = 0.0;
  for (const auto& s : segments) {
    validate_segment(s, "gdp");
    if (s.steps == 0 || s.sample_rate == 0.0) continue;
    const double q = s.sample_rate;
    mu2 += std::expm1(1.0 / (s.noise_multiplier * s.noise_multiplier)) *
           static_cast<double>(s.steps) * q * q;
  }
  return std::sqrt(mu2);
}

double gdp_delta(double eps, double mu) {
  return normal_cdf(-eps / mu + mu / 2.0) - std::exp(eps) * normal_cdf(-eps / mu - mu / 2.0);
}

double gdp_epsilon_from_mu(double mu, double delta) {
  validate_delta(delta, "gdp");
  if (mu == 0.0) return 0.0;
  if (!std::isfinite(mu)) return std::numeric_limits<double>::infinity();
  constexpr double kMaxEps = 500.0;
  if (gdp_delta(kMaxEps, mu) > delta) {
    throw GdpOutOfRangeError(str("epsilon exceeds ", kMaxEps, " (mu = ", mu, ")"), "gdp accountant");
  }
  return brent_root([&](double eps) { return gdp_delta(eps, mu) - delta; }, 0.0, kMaxEps);
}

double gdp_epsilon(const std::vector<Segment>& segments, double delta) {
  return gdp_epsilon_from_mu(gdp_mu_poisson(segments), delta);
}

}  // namespace vardp::dp
