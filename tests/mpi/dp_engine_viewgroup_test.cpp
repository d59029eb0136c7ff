// The DP engine across ranks (invariant 6: the same update on 1 or 2 ranks; invariant 1 with
// view groups: the views of one example on several ranks are summed BEFORE the example is
// clipped, once; invariant 2: one noise draw per step, whatever the number of ranks).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "vardp/dist/tensor_comm.hpp"
#include "vardp/dp/engine.hpp"
#include "vardp/model/var.hpp"

namespace vardp::dp {
namespace {

using Unit = std::pair<int64_t, int64_t>;

struct Tiny {
  model::VAR var{nullptr};
  int64_t E = 0, k = 1;
  torch::Tensor labels, x, targets;
};

// The same model and data on every rank (same seed).
Tiny make_tiny(int64_t E, int64_t k, uint64_t seed) {
  torch::manual_seed(seed);
  model::VARConfig c = model::VARConfig::for_depth(2, 4, 16, 4, {1, 2, 3});
  c.embed_dim = 32;
  c.num_heads = 2;
  c.drop_path_rate = 0;
  Tiny t;
  t.var = model::VAR(c);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : t.var->parameters()) p.add_(torch::randn_like(p) * 0.1);
  }
  t.E = E;
  t.k = k;
  t.labels = torch::randint(0, c.num_classes, {E}, torch::kLong).repeat_interleave(k);
  t.x = torch::randn({E * k, c.L() - c.first_l(), c.Cvae});
  t.targets = torch::randint(0, c.vocab_size, {E * k, c.L()}, torch::kLong);
  return t;
}

MicroBatch micro_batch(const Tiny& t, const std::vector<Unit>& units) {
  std::vector<int64_t> rows, ids;
  for (const auto& u : units) {
    rows.push_back(u.first * t.k + u.second);
    ids.push_back(u.first);
  }
  torch::Tensor r = torch::tensor(rows, torch::kLong);
  return MicroBatch{ids, var_row_loss(t.var, t.labels.index_select(0, r), t.x.index_select(0, r),
                                      t.targets.index_select(0, r))};
}

std::vector<int64_t> lot_of(const Tiny& t) {
  std::vector<int64_t> lot;
  for (int64_t e = 0; e < t.E; ++e) lot.push_back(e);
  return lot;
}

// The whole step in this process alone (a single-process communicator).
torch::Tensor single_process_update(Tiny& t, GradStrategy s, const NoiseSpec& spec, int64_t step) {
  auto single = dist::make_single_comm();
  dist::TensorComm tc(*single);
  DpEngine eng(*t.var, TrainableSet::from_module(*t.var), EngineOptions{s, NormRule::cost, spec.max_grad_norm, t.k});
  eng.begin_step(lot_of(t));
  std::vector<Unit> all;
  for (int64_t e = 0; e < t.E; ++e)
    for (int64_t v = 0; v < t.k; ++v) all.emplace_back(e, v);
  eng.feed(micro_batch(t, all));
  return eng.finish_step(tc, spec, step, false);
}

double rel(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).to(torch::kDouble).norm().item<double>() / b.to(torch::kDouble).norm().item<double>();
}

TEST(DpEngineMpi, ExamplesShardedOverRanksGiveTheSingleProcessUpdate) {
  auto world = dist::make_world_comm();
  dist::TensorComm tc(*world);
  const int rank = world->rank(), size = world->size();
  Tiny t = make_tiny(5, 2, 31);
  const NoiseSpec spec{1.1, 0.05, 2.5, 99};
  for (GradStrategy s : {GradStrategy::instantiate, GradStrategy::bk}) {
    torch::Tensor want = single_process_update(t, s, spec, 4);
    DpEngine eng(*t.var, TrainableSet::from_module(*t.var), EngineOptions{s, NormRule::cost, spec.max_grad_norm, t.k});
    eng.begin_step(lot_of(t));
    std::vector<Unit> mine;
    for (int64_t e = 0; e < t.E; ++e)
      if (e % size == rank) mine.insert(mine.end(), {{e, 0}, {e, 1}});
    eng.feed(micro_batch(t, mine));
    torch::Tensor got = eng.finish_step(tc, spec, 4, false);
    EXPECT_LT(rel(got, want), 1e-5) << grad_strategy_name(s);
    EXPECT_EQ(eng.stats().examples, t.E);
    torch::Tensor all = tc.all_gather(got);
    for (int r = 1; r < size; ++r) EXPECT_TRUE(torch::equal(all[r], all[0]));
  }
}

TEST(DpEngineMpi, ViewGroupSumsViewsBeforeClippingOnce) {
  auto world = dist::make_world_comm();
  dist::TensorComm tc(*world);
  const int rank = world->rank(), size = world->size();
  // k = 2*size views per example; rank r holds views 2r and 2r+1 of EVERY example, so no rank
  // alone can clip any example: the whole world is one view group.
  Tiny t = make_tiny(3, 2 * size, 32);
  for (double C : {0.02, 100.0}) {  // clipped and unclipped
    const NoiseSpec spec{0.0, C, 1.0, 5};
    for (GradStrategy s : {GradStrategy::reference, GradStrategy::instantiate, GradStrategy::bk}) {
      torch::Tensor want = single_process_update(t, s, spec, 0);
      DpEngine eng(*t.var, TrainableSet::from_module(*t.var), EngineOptions{s, NormRule::cost, C, t.k});
      eng.begin_step(lot_of(t));
      std::vector<Unit> mine;
      for (int64_t e = 0; e < t.E; ++e) mine.insert(mine.end(), {{e, 2 * rank}, {e, 2 * rank + 1}});
      eng.feed(micro_batch(t, mine));
      EXPECT_TRUE(eng.example_norms().empty());  // nothing complete locally
      eng.reduce_view_group(tc);
      torch::Tensor got = eng.finish_step(tc, spec, 0, false);
      EXPECT_LT(rel(got, want), 1e-5) << grad_strategy_name(s) << " C=" << C;
      EXPECT_EQ(eng.stats().examples, t.E);  // each example clipped once, by the group's rank 0
      if (C < 1) EXPECT_LE(got.to(torch::kDouble).norm().item<double>(), t.E * C * (1 + 1e-6));
    }
  }
}

}  // namespace
}  // namespace vardp::dp
