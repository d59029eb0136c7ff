// Renyi-DP accountant for DP-SGD. Pure C++ (no LibTorch).
//
// Privacy argument implemented here:
//  * one step of DP-SGD is the Sampled Gaussian Mechanism (Poisson sampling with rate q, Gaussian
//    noise of std sigma * C on a sum of per-example gradients clipped to norm C); its RDP at
//    order alpha is log(A_alpha) / (alpha - 1), with A_alpha as in Mironov, Talwar & Zhang 2019,
//    "Renyi Differential Privacy of the Sampled Gaussian Mechanism", Sec. 3.3 (the finite sum
//    for integer alpha, the two converging series with erfc factors for fractional alpha),
//    computed in log space exactly as Opacus (analysis/rdp.py) computes it;
//  * RDP composes additively over steps and over heterogeneous segments (Mironov 2017, Prop. 1);
//  * RDP -> (epsilon, delta): the conversion Opacus uses, Balle et al. 2020 "Hypothesis testing
//    interpretations and Renyi DP", Theorem 21:
//        eps = min_alpha  rdp(alpha) - (log(delta) + log(alpha)) / (alpha - 1)
//                         + log((alpha - 1) / alpha),
//    minimised over a finite order list (Opacus' DEFAULT_ALPHAS unless given).
#pragma once
#include <cstddef>
#include <vector>

#include "vardp/dp/accountant_types.hpp"

namespace vardp::dp {

// Opacus' RDPAccountant.DEFAULT_ALPHAS: 1 + x/10 for x = 1..99, then 12..63 (151 orders).
const std::vector<double>& default_rdp_orders();

// RDP of ONE step of the Poisson-subsampled Gaussian mechanism at `order` (> 1); +inf when
// sigma == 0 (and q > 0), 0 when q == 0, order / (2 sigma^2) when q == 1. Throws vardp::Error on
// invalid input or if the series cannot be evaluated.
double rdp_subsampled_gaussian(double sample_rate, double noise_multiplier, double order);

// RDP of `segment.steps` steps at every order (order-wise sum).
std::vector<double> rdp_subsampled_gaussian(const Segment& segment,
                                            const std::vector<double>& orders);

// RDP of a heterogeneous composition: the order-wise sum over segments.
std::vector<double> rdp_compose(const std::vector<Segment>& segments,
                                const std::vector<double>& orders);

struct RdpEpsilon {
  double epsilon = 0.0;
  double best_order = 0.0;           // the minimising order (0 for an empty composition)
  std::size_t best_index = 0;        // its index in the order list
  // The minimiser is the first or last order of the list: at large epsilon (tiny sigma) the
  // bound is then limited by the order grid, not by the mechanism. The bound stays valid.
  bool best_order_at_edge = false;
};

// Balle et al. 2020 Thm 21 conversion (see above). NaN entries are ignored like numpy's
// nanargmin; all-NaN gives epsilon = +inf.
RdpEpsilon rdp_to_epsilon(const std::vector<double>& orders, const std::vector<double>& rdp,
                          double delta);

// epsilon(delta) of a composition; an empty composition (or only zero-step segments) spends 0.
RdpEpsilon rdp_epsilon(const std::vector<Segment>& segments, double delta,
                       const std::vector<double>& orders = default_rdp_orders());

namespace detail {
// log(erfc(x)) accurate for large x (asymptotic series beyond the double range of erfc).
double log_erfc(double x);
// log(exp(a) + exp(b)) and log(exp(a) - exp(b)) (a >= b) without overflow.
double log_add(double a, double b);
double log_sub(double a, double b);
}  // namespace detail

}  // namespace vardp::dp
