// Gaussian-DP accountant by the central limit theorem (Bu, Dong, Long & Su 2020, "Deep learning
// with Gaussian differential privacy"), as Opacus' experimental GaussianAccountant with Poisson
// sampling. Pure C++.
//
// Privacy argument (approximate, NOT a guarantee): T Poisson-subsampled Gaussian steps are
// asymptotically mu-GDP with mu = q sqrt(T (exp(1/sigma^2) - 1)); mu^2 adds over segments. A
// mu-GDP mechanism is (eps, delta)-DP for delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu -
// mu/2) (Dong, Roth & Su, Cor. 2.13). The CLT can UNDER-estimate epsilon (Gopi et al. 2021), so
// vardp reports it for comparison only.
#pragma once
#include <vector>

#include "vardp/dp/accountant_types.hpp"
#include "vardp/util/error.hpp"

namespace vardp::dp {

// epsilon lies beyond the search bracket [0, 500] (Opacus raises there too).
class GdpOutOfRangeError : public Error {
 public:
  using Error::Error;
};

// mu of the composition (Poisson subsampling, CLT).
double gdp_mu_poisson(const std::vector<Segment>& segments);
// delta(eps) of mu-GDP.
double gdp_delta(double eps, double mu);
// The eps in [0, 500] with delta(eps) = delta, by Brent's method (Opacus' bracket); throws
// GdpOutOfRangeError when epsilon exceeds 500.
double gdp_epsilon_from_mu(double mu, double delta);
double gdp_epsilon(const std::vector<Segment>& segments, double delta);

}  // namespace vardp::dp
