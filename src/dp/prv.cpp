// PRV accountant (Gopi, Lee & Wutschitz 2021) as Opacus' PRVAccountant runs it; see prv.hpp for
// the privacy argument. Deviations from Opacus are numerical only and documented where made:
// cell masses and the truncated mean are computed without cancellation (CDF on the left, survival
// function on the right), and delta(eps) is accumulated without exp(t) overflow.
#include "vardp/dp/prv.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <queue>

#include "vardp/dp/prv_fft.hpp"
#include "vardp/dp/rdp.hpp"

namespace vardp::dp {
namespace {

constexpr double kSqrt2 = 1.41421356237309504880;
constexpr double kInf = std::numeric_limits<double>::infinity();

// ---- adaptive Gauss-Kronrod (7/15) quadrature, globally adaptive like QUADPACK's QAG ----------

constexpr double kXgk[8] = {0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
                            0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
                            0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
                            0.207784955007898467600689403773245, 0.0};
constexpr double kWgk[8] = {0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
                            0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
                            0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
                            0.204432940075298892414161999234649, 0.209482141084727828012999174891714};
constexpr double kWg[4] = {0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
                           0.381830050505118944950369775488975, 0.417959183673469387755102040816327};

struct QuadPiece {
  double a, b, value, error;
  bool operator<(const QuadPiece& o) const { return error < o.error; }
};

template <class F>
QuadPiece gauss_kronrod(const F& f, double a, double b) {
  const double c = 0.5 * (a + b);
  const double h = 0.5 * (b - a);
  const double fc = f(c);
  double kronrod = fc * kWgk[7];
  double gauss = fc * kWg[3];
  for (int j = 0; j < 7; ++j) {
    const double dx = h * kXgk[j];
    const double s = f(c - dx) + f(c + dx);
    kronrod += kWgk[j] * s;
    if (j % 2 == 1) gauss += kWg[j / 2] * s;
  }
  return {a, b, kronrod * h, std::fabs((kronrod - gauss) * h)};
}

// Integral of f over the sorted breakpoints; splits the piece with the largest error estimate
// until the total estimate is below max(abs_tol, rel_tol |I|) or the piece budget is spent.
template <class F>
double integrate(const F& f, const std::vector<double>& points, double abs_tol, double rel_tol,
                 int max_pieces = 4000) {
  std::priority_queue<QuadPiece> heap;
  for (std::size_t i = 0; i + 1 < points.size(); ++i) {
    if (points[i + 1] > points[i]) heap.push(gauss_kronrod(f, points[i], points[i + 1]));
  }
  auto totals = [&heap]() {
    auto copy = heap;
    long double v = 0.0L, e = 0.0L;
    while (!copy.empty()) {
      v += copy.top().value;
      e += copy.top().error;
      copy.pop();
    }
    return std::pair<double, double>(static_cast<double>(v), static_cast<double>(e));
  };
  long double value = 0.0L, error = 0.0L;
  {
    auto [v, e] = totals();
    value = v;
    error = e;
  }
  int pieces = static_cast<int>(heap.size());
  while (!heap.empty() && pieces < max_pieces &&
         error > std::max(abs_tol, rel_tol * std::fabs(static_cast<double>(value)))) {
    const QuadPiece worst = heap.top();
    const double mid = 0.5 * (worst.a + worst.b);
    if (!(mid > worst.a && mid < worst.b)) break;  // cannot split further
    heap.pop();
    const QuadPiece left = gauss_kronrod(f, worst.a, mid);
    const QuadPiece right = gauss_kronrod(f, mid, worst.b);
    value += static_cast<long double>(left.value) + right.value - worst.value;
    error += static_cast<long double>(left.error) + right.error - worst.error;
    heap.push(left);
    heap.push(right);
    ++pieces;
  }
  return totals().first;  // re-summed to drop the drift of the running updates
}

// z^n for a complex z and a positive integer n, in polar form (what numpy's power does for
// |n| >= 100 through cpow; for smaller n the difference is rounding).
std::complex<double> complex_power(std::complex<double> z, int64_t n) {
  const double r = std::abs(z);
  if (r == 0.0) return {0.0, 0.0};
  const double dn = static_cast<double>(n);
  const double magnitude = std::exp(dn * std::log(r));
  const double phase = dn * std::arg(z);
  return {magnitude * std::cos(phase), magnitude * std::sin(phase)};
}

// Self-composition of one discrete PRV by a power of its DFT (circular convolution on the grid
// of the same size), then the rotation that keeps t = 0 at the same index: the n-fold sum of
// grid indices k_i has t = n t_min + (sum k_i) dt, and n t_min = t_min - (n-1) c dt with
// t_min = -c dt and c = size/2 - 1.
DiscretePrv compose_self(const DiscretePrv& d, int64_t n, const fft::RealFft& plan) {
  if (n == 1) return d;
  const int64_t size = d.domain.size;
  auto spectrum = plan.forward(d.pmf);
  for (auto& v : spectrum) v = complex_power(v, n);
  DiscretePrv out;
  out.pmf = plan.inverse(spectrum);
  int64_t roll = (n - 1) % size;
  if (n % 2 == 0) roll = (roll + size / 2) % size;
  // numpy.roll(x, roll): out[(j + roll) % size] = x[j].
  std::rotate(out.pmf.begin(), out.pmf.end() - roll, out.pmf.end());
  out.domain = d.domain.shifted(d.domain.shifts * static_cast<double>(n - 1));
  return out;
}

DiscretePrv compose_pair(const DiscretePrv& left, const DiscretePrv& right) {
  DiscretePrv out;
  out.pmf = fft::convolve_same(left.pmf, right.pmf);
  out.domain = left.domain.shifted(right.domain.shifts);
  return out;
}

}  // namespace

std::string to_string(PrvBreakdownError::Reason reason) {
  switch (reason) {
    case PrvBreakdownError::Reason::domain_too_large: return "domain_too_large";
    case PrvBreakdownError::Reason::delta_too_small: return "delta_too_small";
    case PrvBreakdownError::Reason::mean_mismatch: return "mean_mismatch";
    case PrvBreakdownError::Reason::no_crossing: return "no_crossing";
    case PrvBreakdownError::Reason::inconsistent: return "inconsistent";
  }
  return "unknown";
}

// ---- the PRV of the Poisson-subsampled Gaussian --------------------------------------------

PoissonSubsampledGaussianPrv::PoissonSubsampledGaussianPrv(double q, double sigma)
    : q_(q), sigma_(sigma), log_q_(std::log(q)), one_minus_q_(1.0 - q) {
  if (!(q > 0.0 && q <= 1.0)) throw Error(str("PRV needs 0 < q <= 1, got ", q), "prv");
  if (!(sigma > 0.0 && std::isfinite(sigma))) {
    throw Error(str("PRV needs a finite sigma > 0, got ", sigma), "prv");
  }
}

void PoissonSubsampledGaussianPrv::cdf_sf(double t, double* cdf, double* sf) const {
  // z = log((e^t - (1-q)) / q); for t >= 0 in a form that cannot overflow.
  double z;
  if (t >= 0.0) {
    z = t - log_q_ + std::log1p(-one_minus_q_ * std::exp(-t));
  } else {
    const double w = std::exp(t) - one_minus_q_;
    if (!(w > 0.0)) {  // t <= log(1 - q): outside the support
      *cdf = 0.0;
      *sf = 1.0;
      return;
    }
    z = std::log(w) - log_q_;
  }
  const double s2 = sigma_ * sigma_;
  const double denom = 2.0 * kSqrt2 * sigma_;
  const double a = (2.0 * z * s2 - 1.0) / denom;
  const double b = (2.0 * z * s2 + 1.0) / denom;
  // erfc of |x| is accurate; the complement 2 - erfc(|x|) is >= 1 and so also accurate.
  const double ea = std::erfc(std::fabs(a));
  const double eb = std::erfc(std::fabs(b));
  const double erfc_a = a >= 0.0 ? ea : 2.0 - ea;
  const double erfc_ma = a >= 0.0 ? 2.0 - ea : ea;
  const double erfc_b = b >= 0.0 ? eb : 2.0 - eb;
  const double erfc_mb = b >= 0.0 ? 2.0 - eb : eb;
  *cdf = 0.5 * q_ * erfc_ma + 0.5 * one_minus_q_ * erfc_mb;
  *sf = 0.5 * q_ * erfc_a + 0.5 * one_minus_q_ * erfc_b;
}

double PoissonSubsampledGaussianPrv::cdf(double t) const {
  double c, s;
  cdf_sf(t, &c, &s);
  return c;
}

double PoissonSubsampledGaussianPrv::sf(double t) const {
  double c, s;
  cdf_sf(t, &c, &s);
  return s;
}

// ---- domain -----------------------------------------------------------------------------------

double PrvDomain::t(int64_t i) const {
  // numpy.linspace: start + i * step, with the last point set to stop exactly.
  if (i == size - 1) return t_max;
  return static_cast<double>(i) * dt() + t_min;
}

PrvDomain PrvDomain::shifted(double delta_t) const {
  return PrvDomain{t_min + delta_t, t_max + delta_t, size, shifts + delta_t};
}

PrvDomain PrvDomain::aligned(double t_min, double t_max, double dt) {
  if (!(dt > 0.0) || !(t_max > t_min)) {
    throw Error(str("bad PRV domain [", t_min, ", ", t_max, "] with dt=", dt), "prv");
  }
  PrvDomain d;
  d.t_min = std::floor(t_min / dt) * dt;
  d.t_max = std::ceil(t_max / dt) * dt;
  d.size = static_cast<int64_t>(std::nearbyint((d.t_max - d.t_min) / dt)) + 1;
  if (d.size % 2 == 1) {
    d.size += 1;
    d.t_max += dt;
  }
  if (std::fabs(d.dt() - dt) / dt >= 1e-8) {
    throw Error(str("PRV domain alignment failed (dt ", d.dt(), " vs ", dt, ")"), "prv");
  }
  return d;
}

// ---- safe domain (Gopi et al. Remark 5.6, as implemented by Opacus / prv_accountant) ----------

double prv_safe_half_width(const std::vector<Segment>& segments, double eps_error,
                           double delta_error) {
  int64_t total = 0;
  for (const auto& s : segments) total += s.steps;
  // Tail bound of the composed PRV: P[|Y| > L] is controlled by the RDP epsilon at delta_error/4.
  double l_max = rdp_epsilon(segments, delta_error / 4.0).epsilon;
  // ... and of each single step at delta_error / (8 total).
  for (const auto& s : segments) {
    const Segment one{s.sample_rate, s.noise_multiplier, 1};
    l_max = std::max(l_max, rdp_epsilon({one}, delta_error / (8.0 * static_cast<double>(total))).epsilon);
  }
  return std::max(l_max, eps_error) + 3.0;
}

double prv_mesh_size(int64_t total_steps, double eps_error, double delta_error) {
  return eps_error / std::sqrt(static_cast<double>(total_steps) * std::log(12.0 / delta_error) / 2.0);
}

// ---- discretisation ---------------------------------------------------------------------------

double prv_truncated_mean(const PoissonSubsampledGaussianPrv& prv, double t_min, double t_max) {
  VARDP_CHECK(t_min < 0.0 && t_max > 0.0, "prv_truncated_mean: domain [", t_min, ", ", t_max,
              "] must contain 0");
  double f_lo, s_lo, f_hi, s_hi;
  prv.cdf_sf(t_min, &f_lo, &s_lo);
  prv.cdf_sf(t_max, &f_hi, &s_hi);
  const double mass = (1.0 - s_hi) - f_lo;
  // E[Y | t_min <= Y <= t_max] = ( int_0^tmax P[t < Y <= tmax] dt - int_tmin^0 P[tmin <= Y <= t] dt )
  // / mass; both integrands are small away from the bulk, so no cancellation against t_max.
  auto neg = [&](double t) { return prv.cdf(t) - f_lo; };
  auto pos = [&](double t) { return prv.sf(t) - s_hi; };
  // Breakpoints on log scales (like Opacus) plus the support edge log(1-q).
  std::vector<double> neg_points{t_min, 0.0};
  std::vector<double> pos_points{0.0, t_max};
  for (double e = -5.0; e <= std::log10(std::max(-t_min, t_max)); e += 0.5) {
    const double p = std::pow(10.0, e);
    if (-p > t_min) neg_points.push_back(-p);
    if (p < t_max) pos_points.push_back(p);
  }
  const double q = prv.sample_rate();
  if (q < 1.0) {
    const double edge = std::log1p(-q);
    if (edge > t_min && edge < 0.0) neg_points.push_back(edge);
  }
  std::sort(neg_points.begin(), neg_points.end());
  std::sort(pos_points.begin(), pos_points.end());
  const double i_neg = integrate(neg, neg_points, 1e-15, 1e-14);
  const double i_pos = integrate(pos, pos_points, 1e-15, 1e-14);
  return (i_pos - i_neg) / mass;
}

DiscretePrv discretize(const PoissonSubsampledGaussianPrv& prv, const PrvDomain& domain) {
  const int64_t n = domain.size;
  const double dt = domain.dt();
  double f_lo, s_lo, f_hi, s_hi;
  prv.cdf_sf(domain.t_min, &f_lo, &s_lo);
  prv.cdf_sf(domain.t_max, &f_hi, &s_hi);
  const double mass = (1.0 - s_hi) - f_lo;  // the truncated PRV is renormalised to mass 1
  if (!(mass > 0.0)) {
    throw PrvBreakdownError(PrvBreakdownError::Reason::inconsistent,
                            str("the PRV has no mass on [", domain.t_min, ", ", domain.t_max, "]"));
  }
  DiscretePrv out;
  out.pmf.resize(static_cast<std::size_t>(n));
  // Cell i is [t_i - dt/2, t_i + dt/2] clipped to [t_min, t_max]; adjacent cells share their
  // boundary evaluation, so the masses telescope exactly.
  double f_prev = f_lo, s_prev = s_lo;
  long double mean_d = 0.0L;
  for (int64_t i = 0; i < n; ++i) {
    double f_next, s_next;
    if (i == n - 1) {
      f_next = f_hi;
      s_next = s_hi;
    } else {
      prv.cdf_sf(domain.t(i) + 0.5 * dt, &f_next, &s_next);
    }
    // Difference of CDFs where they are small, of survival functions where those are.
    const double cell = f_next <= 0.5 ? f_next - f_prev : s_prev - s_next;
    const double p = cell / mass;
    out.pmf[static_cast<std::size_t>(i)] = p;
    mean_d += static_cast<long double>(domain.t(i)) * p;
    f_prev = f_next;
    s_prev = s_next;
  }
  const double mean_c = prv_truncated_mean(prv, domain.t_min, domain.t_max);
  const double shift = mean_c - static_cast<double>(mean_d);
  if (!(std::fabs(shift) < dt / 2.0)) {
    throw PrvBreakdownError(
        PrvBreakdownError::Reason::mean_mismatch,
        str("discrete mean differs from the continuous mean by ", shift, " >= dt/2 = ", dt / 2.0,
            " (q=", prv.sample_rate(), ", sigma=", prv.noise_multiplier(), ")"));
  }
  out.domain = domain.shifted(shift);
  return out;
}

// ---- composition ------------------------------------------------------------------------------

DiscretePrv compose(const std::vector<DiscretePrv>& dprvs, const std::vector<int64_t>& counts) {
  VARDP_CHECK(!dprvs.empty() && dprvs.size() == counts.size(),
              "compose: need one count per discrete PRV");
  const int64_t size = dprvs.front().domain.size;
  for (const auto& d : dprvs) {
    VARDP_CHECK(d.domain.size == size && static_cast<int64_t>(d.pmf.size()) == size,
                "compose: discrete PRVs must share the grid size");
  }
  VARDP_CHECK(size % 2 == 0, "compose: grid size must be even, got ", size);
  const fft::RealFft plan(static_cast<std::size_t>(size));
  std::vector<DiscretePrv> level;
  for (std::size_t k = 0; k < dprvs.size(); ++k) {
    VARDP_CHECK(counts[k] >= 1, "compose: counts must be >= 1");
    level.push_back(compose_self(dprvs[k], counts[k], plan));
  }
  // Pairwise convolution tree over the different segments (Opacus' order: an odd one out is
  // taken from the back and carried to the next level first).
  while (level.size() > 1) {
    std::vector<DiscretePrv> next;
    if (level.size() % 2 == 1) {
      next.push_back(std::move(level.back()));
      level.pop_back();
    }
    for (std::size_t k = 0; k + 1 < level.size(); k += 2) {
      next.push_back(compose_pair(level[k], level[k + 1]));
    }
    level = std::move(next);
  }
  return std::move(level.front());
}

// ---- epsilon from delta -----------------------------------------------------------------------

double prv_delta(const DiscretePrv& d, double eps) {
  long double delta = 0.0L;
  for (int64_t i = 0; i < d.domain.size; ++i) {
    const double t = d.domain.t(i);
    if (t >= eps) delta += d.pmf[static_cast<std::size_t>(i)] * -std::expm1(eps - t);
  }
  return static_cast<double>(delta);
}

PrvEpsilon prv_epsilon_bounds(const DiscretePrv& d, double delta, double delta_error,
                              double eps_error) {
  const int64_t n = d.domain.size;
  if (std::numeric_limits<long double>::epsilon() * static_cast<long double>(n) >
      static_cast<long double>(delta - delta_error)) {
    throw PrvBreakdownError(PrvBreakdownError::Reason::delta_too_small,
                            str("floating-point error would dominate delta=", delta,
                                " on a grid of ", n, " points"));
  }
  // ndelta_i = sum_{j>=i} p_j exp(t_i - t_j) - sum_{j>=i} p_j = -delta(t_i), non-decreasing in
  // i. The first sum is e^{t_i} times Opacus' d2_i, accumulated by the recurrence
  // w_i = p_i + e^{-dt} w_{i+1}, so no exp(t) can overflow (Opacus overflows for t > 709).
  const long double decay = std::exp(-static_cast<long double>(d.domain.dt()));
  std::vector<double> ndelta(static_cast<std::size_t>(n));
  {
    long double tail = 0.0L, weighted = 0.0L;
    for (int64_t i = n - 1; i >= 0; --i) {
      const long double p = d.pmf[static_cast<std::size_t>(i)];
      tail += p;
      weighted = p + decay * weighted;
      ndelta[static_cast<std::size_t>(i)] = static_cast<double>(weighted - tail);
    }
  }
  // The two sums at index i, recomputed by the same recurrence (no N-sized arrays of them).
  auto sums_at = [&](std::size_t i) {
    long double tail = 0.0L, weighted = 0.0L;
    for (int64_t j = n - 1; j >= static_cast<int64_t>(i); --j) {
      const long double p = d.pmf[static_cast<std::size_t>(j)];
      tail += p;
      weighted = p + decay * weighted;
    }
    return std::pair<long double, long double>(tail, weighted);
  };
  auto find_epsilon = [&](double target) {
    // numpy.searchsorted(ndelta, -target, side="left") is this lower bound.
    const auto it = std::lower_bound(ndelta.begin(), ndelta.end(), -target);
    const auto i = static_cast<std::size_t>(it - ndelta.begin());
    if (i == 0) {
      throw PrvBreakdownError(PrvBreakdownError::Reason::no_crossing,
                              str("delta(eps) is already below ", target,
                                  " at the lower end of the domain (t=", d.domain.t_min,
                                  "): cannot compute epsilon"));
    }
    if (i >= ndelta.size()) {
      throw PrvBreakdownError(PrvBreakdownError::Reason::no_crossing,
                              str("delta(eps) stays above ", target,
                                  " on the whole domain (up to t=", d.domain.t_max, ")"));
    }
    // Solve sum_{j>=i} p_j (1 - e^{eps - t_j}) = target for eps (linear in e^eps).
    const auto [tail, weighted] = sums_at(i);
    const long double num = tail - static_cast<long double>(target);
    const double eps = d.domain.t(static_cast<int64_t>(i)) +
                       static_cast<double>(std::log(num / weighted));
    if (!(num > 0.0L) || !std::isfinite(eps)) {
      throw PrvBreakdownError(PrvBreakdownError::Reason::inconsistent,
                              str("non-finite epsilon while inverting delta=", target));
    }
    return eps;
  };
  PrvEpsilon out;
  out.upper = find_epsilon(delta - delta_error) + eps_error;
  out.lower = find_epsilon(delta + delta_error) - eps_error;
  out.estimate = find_epsilon(delta);
  out.domain_size = n;
  out.mesh = d.domain.dt();
  out.eps_error = eps_error;
  out.delta_error = delta_error;
  if (!(out.upper < d.domain.t_max)) {
    throw PrvBreakdownError(PrvBreakdownError::Reason::no_crossing,
                            str("epsilon upper bound ", out.upper,
                                " reaches the end of the PRV domain (", d.domain.t_max, ")"));
  }
  return out;
}

PrvEpsilon prv_epsilon(const std::vector<Segment>& segments, double delta,
                       const PrvOptions& options) {
  validate_delta(delta, "prv_epsilon");
  if (!(options.eps_error > 0.0)) throw Error("eps_error must be > 0", "prv_epsilon");
  const double delta_error = options.delta_error > 0.0 ? options.delta_error : delta / 1000.0;
  if (!(delta_error < delta)) throw Error("delta_error must be < delta", "prv_epsilon");

  // q == 0 or zero steps: the example is never touched, nothing is spent.
  std::vector<Segment> active;
  for (const auto& s : segments) {
    validate_segment(s, "prv_epsilon");
    if (s.steps > 0 && s.sample_rate > 0.0) active.push_back(s);
  }
  PrvEpsilon out;
  out.eps_error = options.eps_error;
  out.delta_error = delta_error;
  if (active.empty()) return out;
  for (const auto& s : active) {
    if (s.noise_multiplier == 0.0) {  // no noise: no finite epsilon at any delta < q
      out.lower = out.estimate = out.upper = kInf;
      return out;
    }
  }

  int64_t total = 0;
  for (const auto& s : active) total += s.steps;
  const double half_width = prv_safe_half_width(active, options.eps_error, delta_error);
  const double mesh = prv_mesh_size(total, options.eps_error, delta_error);
  const double expected_size = 2.0 * std::ceil(half_width / mesh) + 2.0;
  if (!std::isfinite(half_width) || expected_size > static_cast<double>(options.max_domain_size)) {
    throw PrvBreakdownError(
        PrvBreakdownError::Reason::domain_too_large,
        str("the PRV discretisation needs ", expected_size, " points (half-width L=", half_width,
            ", mesh ", mesh, "), more than the limit ", options.max_domain_size,
            "; this happens for very small noise (epsilon in the hundreds)"));
  }
  const PrvDomain domain = PrvDomain::aligned(-half_width, half_width, mesh);

  std::vector<DiscretePrv> dprvs;
  std::vector<int64_t> counts;
  for (const auto& s : active) {
    dprvs.push_back(discretize(PoissonSubsampledGaussianPrv(s.sample_rate, s.noise_multiplier), domain));
    counts.push_back(s.steps);
  }
  const DiscretePrv composed = compose(dprvs, counts);
  out = prv_epsilon_bounds(composed, delta, delta_error, options.eps_error);
  out.half_width = half_width;

  // The true epsilon lies in [lower, upper] and below the RDP bound; a lower bound above the
  // RDP epsilon means the discretisation has broken down, whatever number it produced.
  const double rdp_bound = rdp_epsilon(active, delta).epsilon;
  if (out.lower > rdp_bound * (1.0 + 1e-9) + 1e-12) {
    throw PrvBreakdownError(PrvBreakdownError::Reason::inconsistent,
                            str("PRV lower bound ", out.lower, " exceeds the RDP upper bound ",
                                rdp_bound));
  }
  return out;
}

}  // namespace vardp::dp
