// One entry point over the accountants: epsilon(delta) of a composition of Poisson-subsampled
// Gaussian segments, with what each accountant can say about its own answer. Pure C++.
//
// Privacy argument: DP-SGD with per-example clipping to C and N(0, sigma^2 C^2) noise on the
// clipped sum is, per step, the Poisson-subsampled Gaussian mechanism with noise multiplier
// sigma (sensitivity C under add/remove-one adjacency); the accountants bound its adaptive
// composition (rdp.hpp: Renyi DP; prv.hpp: numerical PRV composition; accountant_gdp.hpp: CLT
// approximation, not a guarantee).
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "vardp/dp/accountant_types.hpp"
#include "vardp/dp/prv.hpp"

namespace vardp::dp {

struct AccountantOptions {
  PrvOptions prv;                  // eps_error, delta_error, domain limit
  std::vector<double> rdp_orders;  // empty: Opacus' default order list
};

struct EpsilonReport {
  AccountantKind accountant = AccountantKind::rdp;
  double delta = 0.0;
  // rdp: the RDP bound; prv: the upper bound (estimate + error); gdp: the CLT approximation.
  double epsilon = 0.0;
  bool guarantee = true;  // false for gdp
  // rdp only
  double rdp_best_order = std::numeric_limits<double>::quiet_NaN();
  bool rdp_best_order_at_edge = false;
  // prv only
  double prv_lower = std::numeric_limits<double>::quiet_NaN();
  double prv_estimate = std::numeric_limits<double>::quiet_NaN();
  int64_t prv_domain_size = 0;
};

// Throws PrvBreakdownError (prv) when no bound can be given; vardp::Error on invalid input.
EpsilonReport compute_epsilon(const std::vector<Segment>& segments, double delta,
                              AccountantKind accountant, const AccountantOptions& options = {});

// Convenience for one homogeneous segment.
EpsilonReport compute_epsilon(double sample_rate, double noise_multiplier, int64_t steps,
                              double delta, AccountantKind accountant,
                              const AccountantOptions& options = {});

}  // namespace vardp::dp
