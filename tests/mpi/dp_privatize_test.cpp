// Invariant 2 across ranks: the noise enters exactly once per step, on rank 0, before the
// all-reduce; every rank ends with the same update, normalised by q*N (invariant 3).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "vardp/dist/tensor_comm.hpp"
#include "vardp/dp/privatize.hpp"

namespace vardp::dp {
namespace {

TEST(PrivatizeMpi, NoiseOnceOnRankZeroSameUpdateEverywhere) {
  auto comm = dist::make_world_comm();
  dist::TensorComm tc(*comm);
  const int n = comm->size();
  const int64_t dim = 4096;
  const RunSecret key = RunSecret::from_hex(std::string(64, 'd'));  // every rank holds the run's secret
  NoiseSpec spec{2.0, 0.1, 100.0, &key};
  // Each rank's local clipped sum.
  torch::Tensor local = torch::full({dim}, static_cast<double>(comm->rank() + 1), torch::kFloat32);
  torch::Tensor update = local.clone();
  privatize_in_place(update, spec, 7, tc);

  torch::Tensor sum_of_locals = torch::full({dim}, n * (n + 1) / 2.0, torch::kFloat32);
  torch::Tensor one_draw = gaussian_noise(update, 2.0 * 0.1, key, 7);
  EXPECT_TRUE(torch::allclose(update, (sum_of_locals + one_draw) / 100.0, 1e-5, 1e-6));
  // Identical on every rank.
  torch::Tensor all = tc.all_gather(update);
  for (int r = 1; r < n; ++r) EXPECT_TRUE(torch::equal(all[r], all[0]));
  // The noise in the update has the variance of ONE draw, not of n draws.
  torch::Tensor noise = update * 100.0 - sum_of_locals;
  double var = noise.to(torch::kDouble).var().item<double>();
  EXPECT_NEAR(var, 0.04, 0.04 * 0.15);
}

}  // namespace
}  // namespace vardp::dp
