// PRV accountant for DP-SGD (Gopi, Lee & Wutschitz 2021, "Numerical Composition of Differential
// Privacy"), following Opacus' PRVAccountant. Pure C++ (no LibTorch).
//
// Privacy argument implemented here:
//  * the privacy loss of one step of DP-SGD (Poisson-subsampled Gaussian, rate q, noise
//    multiplier sigma) is a real random variable Y (the PRV); its CDF has the closed form of
//    Gopi et al., Prop. B.4 (here: PoissonSubsampledGaussianPrv);
//  * the PRV of a composition is the SUM of the per-step PRVs, so its distribution is the
//    convolution of theirs: Y is truncated to a safe domain [-L, L] (L from an RDP tail bound,
//    their Remark 5.6), discretised on a mesh chosen for the requested eps_error, mean-corrected,
//    and convolved with FFTs (identical steps: one power of the DFT; different segments:
//    pairwise linear convolutions);
//  * delta(eps) = E[(1 - exp(eps - Y))_+] of the composed PRV; epsilon(delta) is inverted on the
//    grid. Theorem 5.5 of Gopi et al. turns the discretisation into two-sided bounds:
//        eps_upper = eps_hat(delta - delta_error) + eps_error      (the guarantee)
//        eps_lower = eps_hat(delta + delta_error) - eps_error
//    with Opacus' defaults eps_error = 0.01, delta_error = delta / 1000.
//
// The method has regimes where it cannot give a bound (very small sigma, i.e. epsilon in the
// hundreds, or delta near double precision): then PrvBreakdownError is thrown instead of a number.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "vardp/dp/accountant_types.hpp"
#include "vardp/util/error.hpp"

namespace vardp::dp {

// The PRV method could not produce a trustworthy bound for these parameters.
class PrvBreakdownError : public Error {
 public:
  enum class Reason {
    domain_too_large,  // the discretisation would need more points than allowed
    delta_too_small,   // floating-point error would dominate delta (Opacus' check)
    mean_mismatch,     // discrete and continuous means differ by >= dt/2 (Opacus' check)
    no_crossing,       // delta(eps) never crosses the target on the domain
    inconsistent,      // non-finite values, or a result contradicting the RDP upper bound
  };
  PrvBreakdownError(Reason reason, const std::string& message)
      : Error(message, "prv accountant"), reason_(reason) {}
  Reason reason() const { return reason_; }

 private:
  Reason reason_;
};
std::string to_string(PrvBreakdownError::Reason reason);

struct PrvOptions {
  double eps_error = 0.01;
  double delta_error = 0.0;                 // <= 0: delta / 1000 (Opacus' default)
  int64_t max_domain_size = int64_t{1} << 24;  // refuse larger discretisations (memory, time)
};

struct PrvEpsilon {
  double lower = 0.0;     // eps_hat(delta + delta_error) - eps_error
  double estimate = 0.0;  // eps_hat(delta)
  double upper = 0.0;     // eps_hat(delta - delta_error) + eps_error: the privacy guarantee
  int64_t domain_size = 0;
  double mesh = 0.0;            // dt
  double half_width = 0.0;      // L before alignment
  double eps_error = 0.0;
  double delta_error = 0.0;
};

// epsilon(delta) of a heterogeneous composition. Zero-step and q == 0 segments spend nothing; an
// empty composition gives 0; sigma == 0 with q > 0 gives +inf. Throws PrvBreakdownError when no
// bound can be given, vardp::Error on invalid input.
PrvEpsilon prv_epsilon(const std::vector<Segment>& segments, double delta,
                       const PrvOptions& options = {});

// ---- building blocks (exposed for tests) ----------------------------------------------------

// PRV of one step of the Poisson-subsampled Gaussian mechanism (Gopi et al., Prop. B.4):
// with z(t) = log((e^t - (1 - q)) / q) for t > log(1 - q),
//   cdf(t) = q/2 erfc(-(2 z sigma^2 - 1) / (2 sqrt2 sigma))
//          + (1-q)/2 erfc(-(2 z sigma^2 + 1) / (2 sqrt2 sigma)),   cdf = 0 for t <= log(1-q).
// Both the CDF and the survival function are evaluated without cancellation.
class PoissonSubsampledGaussianPrv {
 public:
  PoissonSubsampledGaussianPrv(double sample_rate, double noise_multiplier);
  double cdf(double t) const;
  double sf(double t) const;  // 1 - cdf, accurate in the upper tail
  // Both at once (two erfc evaluations).
  void cdf_sf(double t, double* cdf, double* sf) const;
  double sample_rate() const { return q_; }
  double noise_multiplier() const { return sigma_; }

 private:
  double q_, sigma_, log_q_, one_minus_q_;
};

// A uniform grid t_i = t_min + i dt, i < size (size even), as numpy.linspace builds it; `shifts`
// accumulates the mean corrections applied to it.
struct PrvDomain {
  double t_min = 0.0;
  double t_max = 0.0;
  int64_t size = 0;
  double shifts = 0.0;

  double dt() const { return (t_max - t_min) / static_cast<double>(size - 1); }
  double t(int64_t i) const;
  PrvDomain shifted(double delta_t) const;
  // Opacus' Domain.create_aligned: grid points on multiples of dt, even size.
  static PrvDomain aligned(double t_min, double t_max, double dt);
};

struct DiscretePrv {
  std::vector<double> pmf;
  PrvDomain domain;
};

// The safe half-width L (Remark 5.6 as in Opacus/prv_accountant, RDP tail bounds) and the mesh.
double prv_safe_half_width(const std::vector<Segment>& segments, double eps_error,
                           double delta_error);
double prv_mesh_size(int64_t total_steps, double eps_error, double delta_error);

// Mean of the PRV truncated to [t_min, t_max], by adaptive Gauss-Kronrod quadrature.
double prv_truncated_mean(const PoissonSubsampledGaussianPrv& prv, double t_min, double t_max);

// Truncates the PRV to the domain, takes the mass of each cell [t_i - dt/2, t_i + dt/2], and
// shifts the grid so that the discrete mean equals the continuous one.
DiscretePrv discretize(const PoissonSubsampledGaussianPrv& prv, const PrvDomain& domain);

// Composes `counts[k]` copies of each dprvs[k]. All must lie on (shifts of) one grid from
// PrvDomain::aligned(-L, L, dt), which puts t = 0 at index size/2 - 1: the composed pmf is
// re-centred on that index, and mass beyond the grid wraps around (negligible on a safe domain).
DiscretePrv compose(const std::vector<DiscretePrv>& dprvs, const std::vector<int64_t>& counts);

// The epsilon bounds of a composed discrete PRV (see the header comment).
PrvEpsilon prv_epsilon_bounds(const DiscretePrv& dprv, double delta, double delta_error,
                              double eps_error);

// delta(eps) of a discrete PRV: sum_i pmf_i (1 - exp(eps - t_i))_+.
double prv_delta(const DiscretePrv& dprv, double eps);

}  // namespace vardp::dp
