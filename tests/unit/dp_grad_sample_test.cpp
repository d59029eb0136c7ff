// Per-layer per-example gradient math (invariant 1: exact per-example norms over an example's
// views): grouped weight gradients, ghost norms with views concatenated, the BK weighted sum.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "vardp/dp/grad_sample.hpp"
#include "tensor_compare.hpp"

namespace vardp::dp {
namespace {

using vardp::test::relative_error;

// Direct per-group weight gradient: sum over the group's rows and tokens of g^T a, in double.
torch::Tensor direct_group_grad(const torch::Tensor& a, const torch::Tensor& g, const std::vector<int64_t>& rows) {
  torch::Tensor acc = torch::zeros({g.size(2), a.size(2)}, torch::kDouble);
  for (int64_t r : rows)
    for (int64_t t = 0; t < a.size(1); ++t)
      acc += torch::outer(g[r][t].to(torch::kDouble), a[r][t].to(torch::kDouble));
  return acc;
}

TEST(RowGroups, GroupsInFirstAppearanceOrderAndBucketsByCount) {
  RowGroups g({7, 3, 7, 9, 3, 7});
  ASSERT_EQ(g.num_rows(), 6);
  ASSERT_EQ(g.num_groups(), 3);
  EXPECT_EQ(g.examples(), (std::vector<int64_t>{7, 3, 9}));
  EXPECT_EQ(g.rows(0), (std::vector<int64_t>{0, 2, 5}));
  EXPECT_EQ(g.rows(1), (std::vector<int64_t>{1, 4}));
  auto buckets = g.buckets({2, 0, 1});
  ASSERT_EQ(buckets.size(), 3u);  // counts 1, 3, 2
  EXPECT_EQ(buckets[0].rows_per_group, 1);
  EXPECT_EQ(buckets[0].groups, std::vector<int64_t>{0});  // position of group 2 in the subset
  EXPECT_EQ(buckets[0].rows, std::vector<int64_t>{3});
  EXPECT_EQ(buckets[2].rows_per_group, 3);
  EXPECT_EQ(buckets[2].groups, std::vector<int64_t>{1});
}

TEST(GradSample, GroupWeightGradsAndNormsMatchDirectSums) {
  torch::manual_seed(3);
  // 7 rows: example 10 has 3 views, 11 has 2 (interleaved), 12 and 13 one each.
  std::vector<int64_t> ids{10, 11, 10, 12, 11, 10, 13};
  RowGroups groups(ids);
  const int64_t T = 5, in = 6, out = 4;
  torch::Tensor a = torch::randn({7, T, in}, torch::kDouble);
  torch::Tensor g = torch::randn({7, T, out}, torch::kDouble);
  std::vector<int64_t> subset{3, 0, 1};  // examples 13, 10, 11
  torch::Tensor w = group_weight_grads(a, g, groups, subset);
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{3, out, in}));
  for (size_t i = 0; i < subset.size(); ++i) {
    torch::Tensor want = direct_group_grad(a, g, groups.rows(subset[i]));
    EXPECT_LT(relative_error(w[static_cast<int64_t>(i)], want), 1e-12) << "group " << subset[i];
  }
  torch::Tensor want_sq = w.pow(2).sum({1, 2});
  for (NormRule rule : {NormRule::ghost, NormRule::instantiate, NormRule::cost}) {
    int64_t ghost = 0, inst = 0;
    torch::Tensor sq = group_weight_sqnorms(a, g, groups, subset, rule, &ghost, &inst);
    EXPECT_LT(relative_error(sq, want_sq), 1e-12) << norm_rule_name(rule);
    EXPECT_EQ(ghost + inst, 3);  // three buckets: 1, 3 and 2 views
    if (rule == NormRule::ghost) EXPECT_EQ(inst, 0);
    if (rule == NormRule::instantiate) EXPECT_EQ(ghost, 0);
  }
}

TEST(GradSample, GhostNormIsTheNormOfTheSumOverViewsNotTheSumOfNorms) {
  torch::manual_seed(4);
  RowGroups groups({0, 0});
  torch::Tensor a = torch::randn({2, 3, 5}, torch::kDouble);
  torch::Tensor g = torch::randn({2, 3, 2}, torch::kDouble);
  double sq = group_weight_sqnorms(a, g, groups, {0}, NormRule::ghost)[0].item<double>();
  torch::Tensor sum = direct_group_grad(a, g, {0, 1});
  EXPECT_NEAR(sq, sum.pow(2).sum().item<double>(), 1e-10);
  double separate = direct_group_grad(a, g, {0}).pow(2).sum().item<double>() +
                    direct_group_grad(a, g, {1}).pow(2).sum().item<double>();
  EXPECT_GT(std::abs(sq - separate), 1e-3);  // the cross terms matter
}

TEST(GradSample, WeightedSumIsTheClipFactorWeightedSumOfPerRowGradients) {
  torch::manual_seed(5);
  torch::Tensor a = torch::randn({4, 3, 5}, torch::kDouble);
  torch::Tensor g = torch::randn({4, 3, 2}, torch::kDouble);
  torch::Tensor w = torch::tensor({0.5, 0.0, 1.0, 0.25}, torch::kDouble);
  torch::Tensor want = torch::zeros({2, 5}, torch::kDouble);
  for (int64_t r = 0; r < 4; ++r) want += w[r].item<double>() * direct_group_grad(a, g, {r});
  EXPECT_LT(relative_error(weighted_weight_sum(a, g, w), want), 1e-12);
}

TEST(GradSample, GroupSumAddsTheRowsOfEachGroup) {
  RowGroups groups({5, 6, 5});
  torch::Tensor x = torch::arange(6, torch::kDouble).view({3, 2});
  torch::Tensor s = group_sum(x, groups, {1, 0});
  EXPECT_TRUE(torch::equal(s, torch::tensor({2.0, 3.0, 4.0, 6.0}, torch::kDouble).view({2, 2})));
  RowGroups single({1, 2, 3});
  EXPECT_TRUE(torch::equal(group_sum(x, single, {0, 1, 2}), x));
}

TEST(GradSample, HybridRuleComparesTwoTSquaredWithLayerSize) {
  EXPECT_TRUE(use_ghost_norm(NormRule::cost, 680, 1024, 3072));   // 2*680^2 < 1024*3072
  EXPECT_FALSE(use_ghost_norm(NormRule::cost, 2720, 1024, 3072)); // 4 views of 680 tokens
  EXPECT_TRUE(use_ghost_norm(NormRule::cost, 1, 1024, 6144));     // AdaLN: one token
  EXPECT_TRUE(use_ghost_norm(NormRule::ghost, 5000, 2, 2));
  EXPECT_FALSE(use_ghost_norm(NormRule::instantiate, 1, 2, 2));
  EXPECT_EQ(parse_norm_rule("ghost"), NormRule::ghost);
  EXPECT_THROW(parse_norm_rule("fast"), std::exception);
}

}  // namespace
}  // namespace vardp::dp
