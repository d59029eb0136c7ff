// Noise calibration: the noise multiplier sigma that makes T steps of the Poisson-subsampled
// Gaussian mechanism (rate q) (target_epsilon, delta)-DP under a given accountant. Pure C++.
//
// Privacy argument: epsilon(sigma) is non-increasing in sigma, so any sigma whose accountant
// epsilon is <= target is a valid choice; the search below (Opacus' get_noise_multiplier) returns
// such a sigma_high, within `epsilon_tolerance` of the target:
//   sigma_high = 10; repeat sigma_high *= 2 until eps(sigma_high) <= target (fail above 1e6);
//   bisect on [0, sigma_high] until target - eps(sigma_high) <= epsilon_tolerance.
// Where the PRV accountant cannot give a bound at a probe, that probe counts as "not certified
// below target" (the search moves up): the returned sigma always carries a proven bound.
#pragma once
#include <cstdint>

#include "vardp/dp/accountant.hpp"

namespace vardp::dp {

struct CalibrationRequest {
  double target_epsilon = 0.0;
  double delta = 0.0;
  double sample_rate = 0.0;
  int64_t steps = 0;
  AccountantKind accountant = AccountantKind::rdp;
  double epsilon_tolerance = 0.01;
  AccountantOptions options;
};

struct CalibrationResult {
  double noise_multiplier = 0.0;
  EpsilonReport report;      // the accountant's answer at noise_multiplier (epsilon <= target)
  int evaluations = 0;       // accountant calls
  int prv_breakdowns = 0;    // probes where PRV gave no bound
};

// Throws vardp::Error when no sigma <= 1e6 reaches the target ("privacy budget too low").
CalibrationResult calibrate_noise_multiplier(const CalibrationRequest& request);

}  // namespace vardp::dp
