// Collectives under mpirun -np 2 (or more): raw buffers, scalars, tensors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "vardp/dist/comm.hpp"
#include "vardp/dist/tensor_comm.hpp"
#include "vardp/util/error.hpp"

namespace vardp::dist {
namespace {

class CommTest : public ::testing::Test {
 protected:
  std::unique_ptr<Comm> comm = make_world_comm();
};

TEST_F(CommTest, WorldHasSeveralRanks) {
  EXPECT_GE(comm->size(), 2) << "run under mpirun -np 2";
  EXPECT_GE(comm->local_rank(), 0);
  EXPECT_LT(comm->local_rank(), comm->local_size());
}

TEST_F(CommTest, AllReduceSumMaxMinOnBuffers) {
  const int r = comm->rank(), n = comm->size();
  std::vector<double> x{1.0 * r, 2.0, -1.0 * r};
  comm->all_reduce(x.data(), x.size(), DType::f64, ReduceOp::sum);
  EXPECT_DOUBLE_EQ(x[0], n * (n - 1) / 2.0);
  EXPECT_DOUBLE_EQ(x[1], 2.0 * n);
  std::vector<int64_t> y{r, -r};
  comm->all_reduce(y.data(), y.size(), DType::i64, ReduceOp::max);
  EXPECT_EQ(y[0], n - 1);
  EXPECT_EQ(y[1], 0);
  EXPECT_EQ(comm->all_reduce(static_cast<int64_t>(r), ReduceOp::min), 0);
  EXPECT_DOUBLE_EQ(comm->all_reduce(0.5, ReduceOp::sum), 0.5 * n);
}

TEST_F(CommTest, BroadcastAndAllGather) {
  std::vector<float> v(5, comm->rank() == 0 ? 3.5f : -1.0f);
  comm->broadcast(v.data(), v.size(), DType::f32, 0);
  for (float f : v) EXPECT_EQ(f, 3.5f);
  std::string s = comm->broadcast(comm->rank() == 0 ? std::string("from root") : std::string("x"), 0);
  EXPECT_EQ(s, "from root");
  auto all = comm->all_gather(static_cast<int64_t>(10 + comm->rank()));
  ASSERT_EQ(static_cast<int>(all.size()), comm->size());
  for (int i = 0; i < comm->size(); ++i) EXPECT_EQ(all[i], 10 + i);
}

TEST_F(CommTest, AnyFlag) {
  EXPECT_FALSE(comm->any_flag(false));
  EXPECT_TRUE(comm->any_flag(comm->rank() == comm->size() - 1));
  EXPECT_TRUE(comm->any_flag(true));
}

TEST_F(CommTest, TensorCollectives) {
  TensorComm tc(*comm);
  const int r = comm->rank(), n = comm->size();
  torch::Tensor x = torch::full({3, 4}, static_cast<double>(r + 1), torch::kFloat32);
  tc.all_reduce(x);
  EXPECT_TRUE(torch::allclose(x, torch::full({3, 4}, n * (n + 1) / 2.0, torch::kFloat32)));
  torch::Tensor d = torch::arange(6, torch::kFloat64) * (r + 1);
  tc.all_reduce(d, ReduceOp::max);
  EXPECT_TRUE(torch::allclose(d, torch::arange(6, torch::kFloat64) * n));
  torch::Tensor b = r == 0 ? torch::arange(4, torch::kInt64) : torch::zeros({4}, torch::kInt64);
  tc.broadcast(b, 0);
  EXPECT_TRUE(torch::equal(b, torch::arange(4, torch::kInt64)));
  torch::Tensor g = tc.all_gather(torch::full({2}, static_cast<double>(r), torch::kFloat32));
  ASSERT_EQ(g.size(0), n);
  for (int i = 0; i < n; ++i) EXPECT_EQ(g[i][1].item<float>(), static_cast<float>(i));
  // Large buffers are sliced into several MPI calls without changing the result.
  torch::Tensor big = torch::ones({3 << 20}, torch::kFloat32);
  tc.all_reduce(big);
  EXPECT_EQ(big.sum().item<double>(), static_cast<double>(n) * (3 << 20));
}

TEST_F(CommTest, StartUpChecks) {
  setenv("SLURM_NTASKS", std::to_string(comm->size() + 1).c_str(), 1);
  EXPECT_THROW(check_world_size_against_slurm(*comm), CollectiveError);
  setenv("SLURM_NTASKS", std::to_string(comm->size()).c_str(), 1);
  EXPECT_NO_THROW(check_world_size_against_slurm(*comm));
  unsetenv("SLURM_NTASKS");
  EXPECT_NO_THROW(check_same_config(*comm, "[train]\nsteps = 1\n"));
  // A rank that resolved something else is detected on every rank.
  EXPECT_THROW(check_same_config(*comm, comm->rank() == 1 ? "other" : "same"), CollectiveError);
}

}  // namespace
}  // namespace vardp::dist
