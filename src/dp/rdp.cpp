// RDP of the Sampled Gaussian Mechanism (Mironov, Talwar & Zhang 2019, Sec. 3.3) and the
// RDP -> (eps, delta) conversion of Balle et al. 2020, Thm 21 -- the computations of Opacus'
// analysis/rdp.py, re-derived in C++ (see rdp.hpp for the privacy argument).
#include "vardp/dp/rdp.hpp"

#include <cmath>
#include <limits>

#include "vardp/util/error.hpp"

namespace vardp::dp {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kSqrt2 = 1.41421356237309504880;
// Fractional-order series are summed until both new terms fall below exp(-30), as in Opacus.
constexpr double kSeriesCutoff = -30.0;
// Guard against a series that does not converge (it always does for 0 < q < 1, sigma > 0).
constexpr long kMaxSeriesTerms = 50'000'000;

// log A_alpha for integer alpha: the binomial expansion of E_{z~mu0}[(mu(z)/mu0(z))^alpha]
// with mu = (1-q) mu0 + q mu1, mu_i = N(i, sigma^2); each term is
// C(alpha,i) q^i (1-q)^(alpha-i) exp((i^2 - i) / (2 sigma^2)).
double log_a_integer(double q, double sigma, long alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double two_s2 = 2.0 * sigma * sigma;
  double log_a = -kInf;
  double binom = 1.0;  // C(alpha, i), by the multiplicative recurrence
  for (long i = 0; i <= alpha; ++i) {
    const double di = static_cast<double>(i);
    const double term = std::log(binom) + di * log_q + static_cast<double>(alpha - i) * log_1mq +
                        (di * di - di) / two_s2;
    log_a = detail::log_add(log_a, term);
    binom = binom * static_cast<double>(alpha - i) / static_cast<double>(i + 1);
  }
  return log_a;
}

// log A_alpha for fractional alpha: the integral splits at z0 (where mu1/mu0 crosses the
// (1-q)/q ratio) into two series, A = A0 + A1, whose terms carry erfc tail factors; the
// generalised binomial coefficients change sign for i > alpha, hence log_sub.
double log_a_fractional(double q, double sigma, double alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double two_s2 = 2.0 * sigma * sigma;
  const double z0 = sigma * sigma * std::log(1.0 / q - 1.0) + 0.5;
  const double log_half = std::log(0.5);
  double log_a0 = -kInf;
  double log_a1 = -kInf;
  double binom = 1.0;  // generalised C(alpha, i)
  for (long i = 0;; ++i) {
    if (i >= kMaxSeriesTerms) {
      throw Error(str("RDP series did not converge after ", i, " terms (q=", q,
                      ", sigma=", sigma, ", order=", alpha, ")"),
                  "rdp");
    }
    const double di = static_cast<double>(i);
    const double j = alpha - di;
    const double log_coef = std::log(std::fabs(binom));
    const double log_t0 = log_coef + di * log_q + j * log_1mq;
    const double log_t1 = log_coef + j * log_q + di * log_1mq;
    const double log_e0 = log_half + detail::log_erfc((di - z0) / (kSqrt2 * sigma));
    const double log_e1 = log_half + detail::log_erfc((z0 - j) / (kSqrt2 * sigma));
    const double log_s0 = log_t0 + (di * di - di) / two_s2 + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / two_s2 + log_e1;
    if (binom > 0.0) {
      log_a0 = detail::log_add(log_a0, log_s0);
      log_a1 = detail::log_add(log_a1, log_s1);
    } else {
      log_a0 = detail::log_sub(log_a0, log_s0);
      log_a1 = detail::log_sub(log_a1, log_s1);
    }
    binom = binom * (alpha - di) / (di + 1.0);
    if (std::fmax(log_s0, log_s1) < kSeriesCutoff) break;
  }
  return detail::log_add(log_a0, log_a1);
}

}  // namespace

namespace detail {

double log_erfc(double x) {
  // glibc's erfc keeps full relative precision down to ~1e-300 (x ~ 26); beyond, use the
  // asymptotic expansion erfc(x) = exp(-x^2) / (x sqrt(pi)) * sum_k (-1)^k (2k-1)!! / (2x^2)^k,
  // whose truncation error at x >= 25 is far below double precision after a few terms.
  if (x < 25.0) return std::log(std::erfc(x));
  const double y = 1.0 / (2.0 * x * x);
  double term = 1.0;
  double sum = 1.0;
  for (int k = 1; k <= 12; ++k) {
    term *= -static_cast<double>(2 * k - 1) * y;
    sum += term;
  }
  constexpr double kHalfLogPi = 0.57236494292470008707;
  return -x * x - std::log(x) - kHalfLogPi + std::log(sum);
}

double log_add(double a, double b) {
  const double lo = std::fmin(a, b);
  const double hi = std::fmax(a, b);
  if (lo == -kInf) return hi;
  return std::log1p(std::exp(lo - hi)) + hi;
}

double log_sub(double a, double b) {
  if (a < b) {
    throw Error(str("log-space subtraction would be negative (", a, " - ", b, ")"), "rdp");
  }
  if (b == -kInf) return a;
  if (a == b) return -kInf;
  const double d = a - b;
  // log(e^a - e^b) = b + log(expm1(d)) (accurate for small d) = a + log1p(-e^-d) (no overflow).
  if (d < 1.0) return std::log(std::expm1(d)) + b;
  return a + std::log1p(-std::exp(-d));
}

}  // namespace detail

const std::vector<double>& default_rdp_orders() {
  static const std::vector<double> orders = [] {
    std::vector<double> o;
    // Same arithmetic as Opacus' `1 + x / 10.0`, so the fractional orders are bit-identical
    // (and 2.0, 3.0, ... are exact integers that take the integer-order path).
    for (int x = 1; x < 100; ++x) o.push_back(1.0 + static_cast<double>(x) / 10.0);
    for (int a = 12; a < 64; ++a) o.push_back(static_cast<double>(a));
    return o;
  }();
  return orders;
}

double rdp_subsampled_gaussian(double q, double sigma, double order) {
  if (!(q >= 0.0 && q <= 1.0)) throw Error(str("sample rate must be in [0, 1], got ", q), "rdp");
  if (!(sigma >= 0.0)) throw Error(str("noise multiplier must be >= 0, got ", sigma), "rdp");
  if (!(order > 1.0)) throw Error(str("RDP order must be > 1, got ", order), "rdp");
  if (q == 0.0) return 0.0;                   // nothing of the example is ever used
  if (sigma == 0.0) return kInf;              // no noise: no privacy
  if (q == 1.0) return order / (2.0 * sigma * sigma);  // plain Gaussian mechanism
  if (std::isinf(order)) return kInf;
  const double log_a = (std::floor(order) == order && order < 1e9)
                           ? log_a_integer(q, sigma, static_cast<long>(order))
                           : log_a_fractional(q, sigma, order);
  return log_a / (order - 1.0);
}

std::vector<double> rdp_subsampled_gaussian(const Segment& segment,
                                            const std::vector<double>& orders) {
  validate_segment(segment, "rdp");
  std::vector<double> rdp(orders.size(), 0.0);
  if (segment.steps == 0) return rdp;
  for (std::size_t i = 0; i < orders.size(); ++i) {
    rdp[i] = rdp_subsampled_gaussian(segment.sample_rate, segment.noise_multiplier, orders[i]) *
             static_cast<double>(segment.steps);
  }
  return rdp;
}

std::vector<double> rdp_compose(const std::vector<Segment>& segments,
                                const std::vector<double>& orders) {
  std::vector<double> total(orders.size(), 0.0);
  for (const auto& s : segments) {
    if (s.steps == 0) continue;
    const auto r = rdp_subsampled_gaussian(s, orders);
    for (std::size_t i = 0; i < total.size(); ++i) total[i] += r[i];
  }
  return total;
}

RdpEpsilon rdp_to_epsilon(const std::vector<double>& orders, const std::vector<double>& rdp,
                          double delta) {
  if (orders.size() != rdp.size() || orders.empty()) {
    throw Error(str("need one RDP value per order (", orders.size(), " orders, ", rdp.size(),
                    " values)"),
                "rdp_to_epsilon");
  }
  validate_delta(delta, "rdp_to_epsilon");
  RdpEpsilon out;
  out.epsilon = kInf;
  out.best_order = std::numeric_limits<double>::quiet_NaN();
  bool found = false;
  const double log_delta = std::log(delta);
  for (std::size_t i = 0; i < orders.size(); ++i) {
    const double a = orders[i];
    // Balle et al. 2020, Thm 21.
    const double eps = rdp[i] - (log_delta + std::log(a)) / (a - 1.0) + std::log((a - 1.0) / a);
    if (std::isnan(eps)) continue;
    if (!found || eps < out.epsilon) {
      out.epsilon = eps;
      out.best_order = a;
      out.best_index = i;
      found = true;
    }
  }
  out.best_order_at_edge = found && (out.best_index == 0 || out.best_index + 1 == orders.size());
  return out;
}

RdpEpsilon rdp_epsilon(const std::vector<Segment>& segments, double delta,
                       const std::vector<double>& orders) {
  validate_delta(delta, "rdp_epsilon");
  bool any = false;
  for (const auto& s : segments) any = any || s.steps > 0;
  if (!any) return RdpEpsilon{};
  return rdp_to_epsilon(orders, rdp_compose(segments, orders), delta);
}

}  // namespace vardp::dp
