// DP-SGD step primitives: Poisson lots (invariant 6 and the subsampling the accountants assume),
// per-example clipping (invariant 1, sensitivity C), the noise draw (invariant 2).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "vardp/dist/tensor_comm.hpp"
#include "vardp/dp/lot_sampler.hpp"
#include "vardp/dp/privatize.hpp"

namespace vardp::dp {
namespace {

TEST(PoissonLot, SizesFollowBinomialMeanAndVariance) {
  const int64_t n = 1020;
  const double q = 0.251;
  const int steps = 2000;
  double sum = 0, sum2 = 0;
  for (int t = 0; t < steps; ++t) {
    double k = static_cast<double>(poisson_lot(11, t, n, q).size());
    sum += k;
    sum2 += k * k;
  }
  double mean = sum / steps, var = sum2 / steps - mean * mean;
  double mu = n * q, sigma2 = n * q * (1 - q);
  // Mean: 99.9% bound (3.29 standard errors); variance: 99.9% bound of the sample variance
  // (standard error sigma^2 * sqrt(2/(steps-1)) for a near-normal variable).
  EXPECT_NEAR(mean, mu, 3.29 * std::sqrt(sigma2 / steps));
  EXPECT_NEAR(var, sigma2, 3.29 * sigma2 * std::sqrt(2.0 / (steps - 1)));
}

TEST(PoissonLot, SameOnEveryRankAndIndependentOfN) {
  auto a = poisson_lot(5, 17, 500, 0.1);
  auto b = poisson_lot(5, 17, 500, 0.1);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, poisson_lot(5, 18, 500, 0.1));
  // Membership of example i does not depend on the examples after it.
  auto c = poisson_lot(5, 17, 300, 0.1);
  std::vector<int64_t> prefix;
  for (auto i : a)
    if (i < 300) prefix.push_back(i);
  EXPECT_EQ(c, prefix);
  EXPECT_THROW(poisson_lot(5, 1, 10, 0.0), std::exception);
}

TEST(PoissonLot, EmptyLotsHappenAndAreValid) {
  int empty = 0;
  for (int t = 0; t < 200; ++t) empty += poisson_lot(3, t, 5, 0.1).empty();
  EXPECT_GT(empty, 50);  // P(empty) = 0.9^5 = 0.59
}

TEST(Clipping, EveryClippedGradientHasNormAtMostC) {
  torch::manual_seed(0);
  const double C = 0.5;
  std::vector<torch::Tensor> g{torch::randn({16, 7, 3}) * torch::linspace(0.01, 3, 16).view({16, 1, 1}),
                               torch::randn({16, 5})};
  torch::Tensor norms = per_example_norms(g);
  torch::Tensor f = clip_factors(norms, C);
  for (int64_t b = 0; b < 16; ++b) {
    double clipped = norms[b].item<double>() * f[b].item<double>();
    EXPECT_LE(clipped, C * (1 + 1e-6));
    if (norms[b].item<double>() < C) EXPECT_DOUBLE_EQ(f[b].item<double>(), 1.0);  // small ones untouched
  }
}

TEST(Clipping, NeighbouringLotsDifferByAtMostC) {
  torch::manual_seed(1);
  const double C = 0.1;
  std::vector<torch::Tensor> g{torch::randn({9, 40}) * 5, torch::randn({9, 4, 4})};
  auto full = clipped_sum(g, C);
  for (int64_t removed = 0; removed < 9; ++removed) {
    torch::Tensor keep = torch::cat({torch::arange(0, removed), torch::arange(removed + 1, 9)}).to(torch::kLong);
    auto neighbour = clipped_sum({g[0].index_select(0, keep), g[1].index_select(0, keep)}, C);
    double d2 = 0;
    for (size_t i = 0; i < full.size(); ++i) d2 += (full[i] - neighbour[i]).to(torch::kDouble).pow(2).sum().item<double>();
    EXPECT_LE(std::sqrt(d2), C * (1 + 1e-6)) << "removing example " << removed;
  }
}

TEST(Noise, StdIsSigmaTimesCWithin999PercentBound) {
  const double sigma = 1.3, C = 0.7, std = sigma * C;
  torch::Tensor like = torch::zeros({1 << 20});
  torch::Tensor z = gaussian_noise(like, std, 42, 3).to(torch::kDouble);
  const double n = static_cast<double>(z.numel());
  double mean = z.mean().item<double>();
  double var = z.var().item<double>();
  EXPECT_NEAR(mean, 0.0, 3.29 * std / std::sqrt(n));
  // Sample variance of normal data: standard error std^2 * sqrt(2/(n-1)).
  EXPECT_NEAR(var, std * std, 3.29 * std * std * std::sqrt(2.0 / (n - 1)));
}

TEST(Noise, DeterminedBySeedAndStepOnly) {
  torch::Tensor like = torch::zeros({1000});
  EXPECT_TRUE(torch::equal(gaussian_noise(like, 1.0, 7, 5), gaussian_noise(like, 1.0, 7, 5)));
  EXPECT_FALSE(torch::equal(gaussian_noise(like, 1.0, 7, 5), gaussian_noise(like, 1.0, 7, 6)));
  EXPECT_FALSE(torch::equal(gaussian_noise(like, 1.0, 7, 5), gaussian_noise(like, 1.0, 8, 5)));
}

TEST(Privatize, SingleRankAddsNoiseOnceAndNormalisesByExpectedLot) {
  auto comm = dist::make_single_comm();
  dist::TensorComm tc(*comm);
  NoiseSpec spec{1.1, 0.5, 256.0, 9};
  torch::Tensor sum = torch::arange(10, torch::kFloat32);
  torch::Tensor expected = (sum + gaussian_noise(sum, 1.1 * 0.5, 9, 4)) / 256.0;
  privatize_in_place(sum, spec, 4, tc);
  EXPECT_TRUE(torch::allclose(sum, expected));
  // Empty lot: the update is pure noise, still divided by q*N.
  torch::Tensor zero = torch::zeros({10});
  privatize_in_place(zero, spec, 5, tc);
  EXPECT_TRUE(torch::allclose(zero, gaussian_noise(zero, 0.55, 9, 5) / 256.0));
  EXPECT_GT(zero.abs().sum().item<double>(), 0.0);
}

}  // namespace
}  // namespace vardp::dp
