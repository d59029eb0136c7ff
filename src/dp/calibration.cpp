// Bracketing + bisection for sigma, as Opacus' get_noise_multiplier (see calibration.hpp).
#include "vardp/dp/calibration.hpp"

#include <cmath>
#include <limits>

#include "vardp/dp/accountant_gdp.hpp"
#include "vardp/dp/prv_fft.hpp"
#include "vardp/util/error.hpp"

namespace vardp::dp {
namespace {
constexpr double kMaxSigma = 1e6;  // Opacus' MAX_SIGMA
}

CalibrationResult calibrate_noise_multiplier(const CalibrationRequest& req) {
  const std::string context = "noise calibration";
  if (!(req.target_epsilon > 0.0 && std::isfinite(req.target_epsilon))) {
    throw Error(str("target epsilon must be positive and finite, got ", req.target_epsilon), context);
  }
  if (!(req.epsilon_tolerance > 0.0)) throw Error("epsilon tolerance must be > 0", context);
  if (req.steps <= 0) throw Error(str("steps must be >= 1, got ", req.steps), context);
  validate_delta(req.delta, context);
  validate_segment(Segment{req.sample_rate, 1.0, req.steps}, context);

  CalibrationResult result;
  const fft::PlanCacheScope keep_fft_plans;  // the probes' PRV grids share FFT lengths
  // epsilon at sigma, or +inf when PRV cannot certify any bound there.
  auto evaluate = [&](double sigma, EpsilonReport* report) {
    ++result.evaluations;
    try {
      *report = compute_epsilon(req.sample_rate, sigma, req.steps, req.delta, req.accountant,
                                req.options);
      return report->epsilon;
    } catch (const PrvBreakdownError&) {
      ++result.prv_breakdowns;
      return std::numeric_limits<double>::infinity();
    } catch (const GdpOutOfRangeError&) {  // epsilon > 500 is not certified below the target
      return std::numeric_limits<double>::infinity();
    }
  };

  double sigma_low = 0.0;
  double sigma_high = 10.0;
  double eps_high = std::numeric_limits<double>::infinity();
  EpsilonReport report_high;
  while (eps_high > req.target_epsilon) {
    sigma_high *= 2.0;
    eps_high = evaluate(sigma_high, &report_high);
    if (sigma_high > kMaxSigma) {
      throw Error(str("the privacy budget is too low: epsilon ", req.target_epsilon,
                      " is not reached even with sigma > ", kMaxSigma),
                  context);
    }
  }
  // The interval halves each round; once it cannot shrink further, sigma_high (whose epsilon is
  // below the target) is the answer even if the tolerance was not met.
  while (req.target_epsilon - eps_high > req.epsilon_tolerance) {
    if (!(sigma_low < (sigma_low + sigma_high) / 2.0 && (sigma_low + sigma_high) / 2.0 < sigma_high)) {
      break;
    }
    const double sigma = (sigma_low + sigma_high) / 2.0;
    EpsilonReport report;
    const double eps = evaluate(sigma, &report);
    if (eps < req.target_epsilon) {
      sigma_high = sigma;
      eps_high = eps;
      report_high = report;
    } else {
      sigma_low = sigma;
    }
  }
  result.noise_multiplier = sigma_high;
  result.report = report_high;
  return result;
}

}  // namespace vardp::dp
