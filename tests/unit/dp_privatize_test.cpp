// The Gaussian mechanism of a DP-SGD step: the clipping bound at its boundary (invariant 1,
// sensitivity C after rounding), the noise tensor from the secret stream and its single addition
// before the normalisation by q*N (invariants 2, 3, 6).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "vardp/dist/tensor_comm.hpp"
#include "vardp/dp/engine.hpp"
#include "vardp/dp/privatize.hpp"

namespace vardp::dp {
namespace {

RunSecret test_key(char digit) { return RunSecret::from_hex(std::string(64, digit)); }

double norm64(const torch::Tensor& t) { return t.to(torch::kFloat64).norm().item<double>(); }

// A gradient of exactly `target` norm (as far as float32 allows), at every scale the clip sees.
torch::Tensor gradient_with_norm(int64_t P, double target, int64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor g = torch::randn({P}, torch::kFloat64);
  return (g * (target / g.norm().item<double>())).to(torch::kFloat32);
}

TEST(ClipBoundary, ScaledGradientNeverExceedsCAfterFloat32Rounding) {
  // The product the engine forms (clip_and_add, clip_rows): float32 gradient x float32 factor
  // from a float64 norm. Targets straddle C by less than float32's resolution and go far above.
  for (double C : {0.1, 0.5, 1.0, 3.7}) {
    for (double rel : {1.0 - 1e-7, 1.0, 1.0 + 1e-9, 1.0 + 1e-7, 1.0 + 1e-5, 2.0, 1e3, 1e7}) {
      for (int64_t P : {1, 7, 100003}) {
        torch::Tensor g = gradient_with_norm(P, C * rel, static_cast<int64_t>(P + 1000 * rel));
        torch::Tensor n = torch::tensor({norm64(g)}, torch::kFloat64);
        torch::Tensor f = clip_factors(n, C);
        const double out = norm64(g * f.to(torch::kFloat32));
        EXPECT_LE(out, C) << "C=" << C << " rel=" << rel << " P=" << P;
        // ... and the margin costs almost nothing: a clipped gradient keeps at least
        // C (1 - 1e-5) / (1 + 1e-6 / norm) >= C (1 - 3e-5) here (norm >= C >= 0.1).
        if (rel >= 1.0 + 1e-5) EXPECT_GE(out, C * (1 - 3e-5));
      }
    }
  }
  // Small gradients are untouched.
  EXPECT_DOUBLE_EQ(clip_factors(torch::tensor({0.01}, torch::kFloat64), 0.5).item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(clip_factors(torch::tensor({0.0}, torch::kFloat64), 0.5).item<double>(), 1.0);
}

// A one-tensor "model" whose row loss is w . v_row: an example's gradient is the mean of its
// views' v, so the test sets each example's gradient norm exactly.
struct Dot : torch::nn::Module {
  torch::Tensor w;
  explicit Dot(int64_t P) { w = register_parameter("w", torch::zeros({P})); }
};

TEST(ClipBoundary, EngineContributionOfEachExampleIsAtMostC) {
  const int64_t P = 50001;
  const double C = 0.1;
  auto model = std::make_shared<Dot>(P);
  TrainableSet set = TrainableSet::from_module(*model);
  for (double rel : {1.0, 1.0 + 1e-8, 1.0 + 1e-6, 1e6}) {
    DpEngine engine(*model, set, EngineOptions{GradStrategy::reference, NormRule::cost, C, 2});
    // Two views whose mean has norm rel * C (the engine clips the MEAN over views, once).
    torch::Tensor g = gradient_with_norm(P, C * rel, 7);
    torch::Tensor views = torch::stack({g * 0.5f, g * 1.5f});
    engine.begin_step({42});
    MicroBatch mb{{42, 42}, [&](const torch::Tensor& rows) {
                    return torch::mv(views.index_select(0, rows), model->w);
                  }};
    engine.feed(mb);
    EXPECT_LE(norm64(engine.local_clipped_sum()), C) << "rel=" << rel;
    EXPECT_NEAR(engine.example_norms().at(42), C * rel, C * rel * 1e-5);
  }
}

TEST(Noise, StdIsSigmaTimesCWithin999PercentBound) {
  const double sigma = 1.3, C = 0.7, std = sigma * C;
  torch::Tensor like = torch::zeros({1 << 20});
  torch::Tensor z = gaussian_noise(like, std, test_key('4'), 3).to(torch::kDouble);
  const double n = static_cast<double>(z.numel());
  EXPECT_NEAR(z.mean().item<double>(), 0.0, 3.29 * std / std::sqrt(n));
  // Sample variance of normal data: standard error std^2 * sqrt(2/(n-1)).
  EXPECT_NEAR(z.var().item<double>(), std * std, 3.29 * std * std * std::sqrt(2.0 / (n - 1)));
}

TEST(Noise, DeterminedBySecretAndStepOnly) {
  torch::Tensor like = torch::zeros({1000});
  const RunSecret a = test_key('7'), b = test_key('8');
  EXPECT_FALSE(torch::equal(gaussian_noise(like, 1.0, a, 5), gaussian_noise(like, 1.0, a, 6)));
  EXPECT_FALSE(torch::equal(gaussian_noise(like, 1.0, a, 5), gaussian_noise(like, 1.0, b, 5)));
  // The tensor carries the shape and dtype of `like`.
  EXPECT_EQ(gaussian_noise(torch::zeros({3, 4}, torch::kFloat64), 1.0, a, 1).sizes(), torch::IntArrayRef({3, 4}));
}

TEST(Privatize, SingleRankAddsNoiseOnceAndNormalisesByExpectedLot) {
  auto comm = dist::make_single_comm();
  dist::TensorComm tc(*comm);
  const RunSecret key = test_key('9');
  NoiseSpec spec{1.1, 0.5, 256.0, &key};
  torch::Tensor sum = torch::arange(10, torch::kFloat32);
  torch::Tensor expected = (sum + gaussian_noise(sum, 1.1 * 0.5, key, 4)) / 256.0;
  privatize_in_place(sum, spec, 4, tc);
  EXPECT_TRUE(torch::allclose(sum, expected));
  // Empty lot: the update is pure noise, still divided by q*N.
  torch::Tensor zero = torch::zeros({10});
  privatize_in_place(zero, spec, 5, tc);
  EXPECT_TRUE(torch::allclose(zero, gaussian_noise(zero, 0.55, key, 5) / 256.0));
  EXPECT_GT(zero.abs().sum().item<double>(), 0.0);
  // The prefetched noise is the same draw.
  NoisePrefetcher pf(key, 10, 1.1 * 0.5, 1);
  pf.prefetch(5);
  spec.prefetcher = &pf;
  torch::Tensor again = torch::zeros({10});
  privatize_in_place(again, spec, 5, tc);
  EXPECT_TRUE(torch::equal(again, zero));
  // Without a secret there is no noise to add: refused, never silently noiseless.
  NoiseSpec no_secret{1.1, 0.5, 256.0, nullptr};
  try {
    privatize_in_place(again, no_secret, 6, tc);
    FAIL() << "noise without a secret was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("run secret"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vardp::dp
