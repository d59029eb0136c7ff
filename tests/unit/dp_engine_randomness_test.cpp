// The DP engine with the per-row randomness of a real training step: label dropout (VAR's
// classifier-free guidance: a dropped label becomes the null class num_classes), drop-path
// (stochastic depth, per block and row) and rows whose label IS the null class. The trainer
// draws these decisions per (example, view) unit (train/trainer.cpp row_randomness) and passes
// them as explicit masks (model::ForwardOptions label_drop_mask / drop_path_keep) that
// dp::var_row_loss slices with the rows. Invariants 1 and 6: every example's gradient is the
// mean over its views, each view with its OWN draws, whatever micro-batch (or subset of rows,
// for the reference strategy) the view is computed in; so the engine's clipped sum must equal
// the per-view reference computed with the same masks, for every strategy and every split.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "dp_engine_test_support.hpp"
#include "vardp/dp/engine.hpp"
#include "vardp/model/var.hpp"

namespace vardp::dp {
namespace {

using namespace vardp::dp::enginetest;

// depth 3 with drop_path_rate 0.6: per-block rates 0, 0.3, 0.6 (block 0 never drops; the
// scale 1/keep of kept rows differs between blocks 1 and 2).
Tiny tiny_with_randomness(int64_t E, int64_t k, uint64_t seed, double label_smoothing) {
  TinyOptions o;
  o.depth = 3;
  o.drop_path_rate = 0.6;
  Tiny t = make_tiny(E, k, seed, o);
  enable_lora_everywhere(t);
  add_row_randomness(t, seed + 1);
  t.label_smoothing = label_smoothing;
  return t;
}

// Rows with each kind of randomness exist (the premise of every test below).
void expect_every_kind_of_randomness(const Tiny& t) {
  EXPECT_TRUE(t.var->is_training());
  const auto& rates = t.var->drop_path_rates();
  ASSERT_EQ(rates.size(), 3u);
  EXPECT_EQ(rates[0], 0.0);
  EXPECT_GT(rates[2], rates[1]);
  EXPECT_GT(t.labels.eq(t.null_class()).sum().item<int64_t>(), 0);  // null-class examples
  const int64_t dropped = t.label_drop.sum().item<int64_t>();
  EXPECT_GT(dropped, 0);
  EXPECT_LT(dropped, t.E * t.k);
  for (int64_t d = 1; d < 3; ++d) {
    const int64_t kept = t.keep[d].sum().item<int64_t>();
    EXPECT_GT(kept, 0) << "block " << d;
    EXPECT_LT(kept, t.E * t.k) << "block " << d;
  }
  // Views of example 1 (a real class) see different labels.
  ASSERT_GT(t.E, 1);
  EXPECT_NE(t.label_drop[t.row(1, 0)].item<bool>(), t.label_drop[t.row(1, 0) + 1].item<bool>());
}

TEST(VarRowLoss, GivesEveryRowItsOwnDrawsInAnySubsetOfRows) {
  Tiny t = tiny_with_randomness(5, 2, 41, 0.0);
  expect_every_kind_of_randomness(t);
  // A micro-batch with the units in a shuffled order.
  std::vector<Unit> units;
  for (int64_t v = t.k - 1; v >= 0; --v)
    for (int64_t e : {3, 0, 4, 1, 2}) units.emplace_back(e, v);
  MicroBatch mb = micro_batch(t, units);
  const int64_t R = static_cast<int64_t>(units.size());
  torch::NoGradGuard no_grad;
  torch::Tensor all = mb.loss(torch::arange(R, torch::kLong));
  ASSERT_EQ(all.size(0), R);
  // Each row's loss is the batch-of-one loss of its unit with its own masks.
  Tiny plain = t;  // the same model and data, nothing dropped (kept blocks still scaled 1/keep)
  plain.label_drop = torch::zeros_like(t.label_drop);
  plain.keep = torch::ones_like(t.keep);
  double worst = 0;
  int64_t changed = 0;
  for (int64_t i = 0; i < R; ++i) {
    const auto [e, v] = units[static_cast<size_t>(i)];
    const int64_t r = t.row(e, v);
    const bool null_label = t.labels[r].item<int64_t>() == t.null_class();
    const bool label_dropped = t.label_drop[r].item<bool>();
    torch::Tensor label = t.labels.narrow(0, r, 1).clone();
    if (label_dropped) label.fill_(t.null_class());
    model::ForwardOptions fo;
    fo.drop_path_keep = t.keep.narrow(1, r, 1);
    torch::Tensor want =
        model::cross_entropy_loss(t.var->forward(label, t.x.narrow(0, r, 1), fo), t.targets.narrow(0, r, 1)).per_example;
    worst = std::max(worst, rel_err(all.narrow(0, i, 1), want));
    // The same unit with nothing dropped differs exactly when a draw changes the row: a label
    // dropped from a real class (dropping a null label changes nothing) or a dropped block.
    const bool effective = (label_dropped && !null_label) || t.keep.select(1, r).min().item<float>() == 0.f;
    const double d = rel_err(micro_batch(plain, {{e, v}}).loss(torch::zeros({1}, torch::kLong)), want);
    if (effective) {
      EXPECT_GT(d, 1e-3) << "unit (" << e << ", " << v << ")";
      ++changed;
    } else {
      EXPECT_LT(d, kEngineTol) << "unit (" << e << ", " << v << ")";
    }
  }
  EXPECT_LT(worst, kEngineTol);
  EXPECT_GT(changed, 0);
  // Any subset of the rows, in any order, sees the same per-row losses.
  for (const std::vector<int64_t>& subset :
       std::vector<std::vector<int64_t>>{{0}, {R - 1}, {4, 1}, {7, 2, 9, 0}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}}) {
    torch::Tensor rows = torch::tensor(subset, torch::kLong);
    EXPECT_LT(rel_err(mb.loss(rows), all.index_select(0, rows)), kEngineTol) << rows;
  }
}

struct Case {
  int64_t E, k;
  double label_smoothing;
};

class EngineRandomness : public ::testing::TestWithParam<Case> {};

TEST_P(EngineRandomness, ClippedSumWithDropoutDropPathAndNullClassEqualsTheReferenceForEveryStrategyAndSplit) {
  const Case c = GetParam();
  Tiny t = tiny_with_randomness(c.E, c.k, 42, c.label_smoothing);
  expect_every_kind_of_randomness(t);
  const Layout split = split_batches(t.E, t.k);
  ASSERT_TRUE(every_micro_batch_has_several_examples(split));
  ASSERT_TRUE(spreads_an_example(split));
  const std::vector<std::pair<std::string, Layout>> layouts{
      {"one", one_batch(t.E, t.k)}, {"split", split}, {"reversed", reversed(split)}};
  const std::vector<std::pair<std::string, Selector>> sets{
      {"full", {}}, {"lora", is_lora_set}, {"lntune", is_ada_lin}, {"class_emb", contains("class_emb.weight")}};
  double worst = 0;
  for (const auto& [set_name, sel] : sets) {
    TrainableSet set = TrainableSet::from_module(*t.var, sel);
    const Reference per_example = per_example_reference(t, set);
    // Premise: each kind of randomness changes the reference gradients of every set (a label
    // reaches every tensor through the conditioning, a dropped block through the residual
    // stream), so an engine that lost or misplaced either mask would disagree with it.
    for (const std::string without : {"label_drop", "keep"}) {
      Tiny other = t;  // nothing dropped of that kind
      if (without == "label_drop")
        other.label_drop = torch::zeros_like(t.label_drop);
      else
        other.keep = torch::ones_like(t.keep);
      const Reference r = per_example_reference(other, set);
      double diff = 0;
      for (int64_t e = 0; e < t.E; ++e)
        diff = std::max(diff, rel_err(r.grads[static_cast<size_t>(e)], per_example.grads[static_cast<size_t>(e)]));
      EXPECT_GT(diff, 1e-3) << set_name << ": the reference does not depend on " << without;
    }
    if (set_name == "class_emb") {
      // The null class's row of the embedding gets gradient (from null-label and dropped rows).
      torch::Tensor g = torch::zeros_like(per_example.grads[0]);
      for (const auto& x : per_example.grads) g += x;
      EXPECT_GT(set.slice(g, 0)[t.null_class()].norm().item<double>(), 0.0);
    }
    for (double C_rule : {-1.0, 0.0}) {
      const Reference ref = reclip(per_example, C_rule);
      for (const auto& st : all_strategies()) {
        torch::Tensor first;
        for (const auto& [layout_name, layout] : layouts) {
          const std::string what = set_name + " k=" + std::to_string(t.k) + " C=" + std::to_string(ref.C) + " " +
                                   layout_name + " " + st.name();
          EngineRun run = run_engine(t, sel, st, ref.C, layout);
          EXPECT_EQ(static_cast<int64_t>(run.norms.size()), t.E) << what;
          const EngineError err = worst_error(run, ref, set);
          EXPECT_LT(err.err, kEngineTol) << what << ": worst at " << err.where;
          worst = std::max(worst, err.err);
          // The split of rows over micro-batches changes nothing but rounding.
          if (!first.defined())
            first = run.sum;
          else
            EXPECT_LT(rel_err(run.sum, first), kEngineTol) << what << " vs one micro-batch";
        }
      }
    }
  }
  std::printf("[ report ] k=%lld with dropout/drop-path/null class: max rel err %.3g\n",
              static_cast<long long>(c.k), worst);
}

INSTANTIATE_TEST_SUITE_P(Views, EngineRandomness,
                         ::testing::Values(Case{6, 2, 0.0}, Case{5, 3, 0.1}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return "k" + std::to_string(info.param.k) +
                                  (info.param.label_smoothing > 0 ? "_smoothing" : "");
                         });

}  // namespace
}  // namespace vardp::dp
