// Dispatch over the RDP, PRV and GDP accountants (see accountant.hpp).
#include "vardp/dp/accountant.hpp"

#include "vardp/dp/accountant_gdp.hpp"
#include "vardp/dp/rdp.hpp"

namespace vardp::dp {

EpsilonReport compute_epsilon(const std::vector<Segment>& segments, double delta,
                              AccountantKind accountant, const AccountantOptions& options) {
  validate_delta(delta, "compute_epsilon");
  for (const auto& s : segments) validate_segment(s, "compute_epsilon");
  EpsilonReport r;
  r.accountant = accountant;
  r.delta = delta;
  r.guarantee = is_guarantee(accountant);
  switch (accountant) {
    case AccountantKind::rdp: {
      const auto& orders = options.rdp_orders.empty() ? default_rdp_orders() : options.rdp_orders;
      const RdpEpsilon e = rdp_epsilon(segments, delta, orders);
      r.epsilon = e.epsilon;
      r.rdp_best_order = e.best_order;
      r.rdp_best_order_at_edge = e.best_order_at_edge;
      break;
    }
    case AccountantKind::prv: {
      const PrvEpsilon e = prv_epsilon(segments, delta, options.prv);
      r.epsilon = e.upper;  // the guarantee, as Opacus' PRVAccountant.get_epsilon returns
      r.prv_lower = e.lower;
      r.prv_estimate = e.estimate;
      r.prv_domain_size = e.domain_size;
      break;
    }
    case AccountantKind::gdp:
      r.epsilon = gdp_epsilon(segments, delta);
      break;
  }
  return r;
}

EpsilonReport compute_epsilon(double sample_rate, double noise_multiplier, int64_t steps,
                              double delta, AccountantKind accountant,
                              const AccountantOptions& options) {
  return compute_epsilon({Segment{sample_rate, noise_multiplier, steps}}, delta, accountant,
                         options);
}

}  // namespace vardp::dp
