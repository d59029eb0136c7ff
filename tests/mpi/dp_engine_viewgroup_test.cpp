// The DP engine across ranks (invariant 6: the same update on 1 or 2 ranks; invariant 1 with
// view groups: the views of one example on several ranks are summed BEFORE the example is
// clipped, once; invariant 2: one noise draw per step, whatever the number of ranks).
// The expected clipped sums come from the independent per-view reference of
// tests/unit/dp_engine_test_support.hpp, with the per-row randomness of a training step (label
// dropout, drop-path, null-class labels), the same on every rank (same torch seed).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "../unit/dp_engine_test_support.hpp"
#include "vardp/dist/tensor_comm.hpp"
#include "vardp/dp/engine.hpp"
#include "vardp/model/var.hpp"

namespace vardp::dp {
namespace {

using namespace vardp::dp::enginetest;

// The same model, data and per-row randomness on every rank.
Tiny tiny_for_ranks(int64_t E, int64_t k, uint64_t seed) {
  TinyOptions o;
  o.depth = 3;
  o.drop_path_rate = 0.6;
  Tiny t = make_tiny(E, k, seed, o);
  add_row_randomness(t, seed + 1);
  return t;
}

std::vector<int64_t> lot_of(const Tiny& t) {
  std::vector<int64_t> lot;
  for (int64_t e = 0; e < t.E; ++e) lot.push_back(e);
  return lot;
}

// The whole step in this process alone (a single-process communicator), all rows in one
// micro-batch.
torch::Tensor single_process_update(Tiny& t, const Strategy& st, const NoiseSpec& spec, int64_t step) {
  auto single = dist::make_single_comm();
  dist::TensorComm tc(*single);
  DpEngine eng(*t.var, TrainableSet::from_module(*t.var), EngineOptions{st.s, st.rule, spec.max_grad_norm, t.k});
  eng.begin_step(lot_of(t));
  eng.feed(micro_batch(t, one_batch(t.E, t.k)[0]));
  return eng.finish_step(tc, spec, step, false);
}

TEST(DpEngineMpi, ExamplesShardedOverRanksGiveTheReferenceAndTheSingleProcessUpdate) {
  auto world = dist::make_world_comm();
  dist::TensorComm tc(*world);
  const int rank = world->rank(), size = world->size();
  Tiny t = tiny_for_ranks(6, 2, 31);
  TrainableSet set = TrainableSet::from_module(*t.var);
  const Reference ref = reference(t, set);  // C between the middle norms
  const double qN = 2.5;
  // This rank's examples, view 0 of each in one micro-batch and view 1 in another: several
  // examples per micro-batch, every example spread over two micro-batches.
  Layout mine(2);
  for (int64_t e = rank; e < t.E; e += size)
    for (int64_t v = 0; v < t.k; ++v) mine[static_cast<size_t>(v)].emplace_back(e, v);
  if (size <= 3) ASSERT_TRUE(every_micro_batch_has_several_examples(mine));
  for (const auto& st : all_strategies()) {
    for (double sigma : {0.0, 1.1}) {
      const NoiseSpec spec = noise_spec(sigma, ref.C, qN);
      DpEngine eng(*t.var, set, EngineOptions{st.s, st.rule, ref.C, t.k});
      eng.begin_step(lot_of(t));
      for (const auto& units : mine) eng.feed(micro_batch(t, units));
      torch::Tensor got = eng.finish_step(tc, spec, 4, false);
      EXPECT_EQ(eng.stats().examples, t.E) << st.name();
      if (sigma == 0) {
        // Without noise the update is the reference's clipped sum / q*N.
        EXPECT_LT(rel_err(got.to(torch::kDouble) * qN, ref.clipped_sum), kEngineTol) << st.name();
      } else {
        // With noise: the single-process update (the same one draw of the step).
        EXPECT_LT(rel_err(got, single_process_update(t, st, spec, 4)), kEngineTol) << st.name() << " sigma " << sigma;
      }
      torch::Tensor all = tc.all_gather(got);
      for (int r = 1; r < size; ++r) EXPECT_TRUE(torch::equal(all[r], all[0])) << st.name() << " rank " << r;
    }
  }
}

TEST(DpEngineMpi, ViewGroupSumsViewsBeforeClippingOnce) {
  auto world = dist::make_world_comm();
  dist::TensorComm tc(*world);
  const int rank = world->rank(), size = world->size();
  // k = 2*size views per example; rank r holds views 2r and 2r+1 of EVERY example (one
  // micro-batch per view), so no rank alone can clip any example: the whole world is one view
  // group. Clipping each rank's partial mean would give other norms and another sum.
  Tiny t = tiny_for_ranks(4, 2 * size, 32);
  TrainableSet set = TrainableSet::from_module(*t.var);
  const Reference per_example = per_example_reference(t, set);
  for (double C_rule : {0.0, -1.0, 100.0}) {  // all clipped, half clipped, none clipped
    const Reference ref = reclip(per_example, C_rule);
    for (const auto& st : all_strategies()) {
      const std::string what = st.name() + " C=" + std::to_string(ref.C);
      DpEngine eng(*t.var, set, EngineOptions{st.s, st.rule, ref.C, t.k});
      eng.begin_step(lot_of(t));
      for (int64_t v : {2 * rank, 2 * rank + 1}) {
        std::vector<Unit> mb;
        for (int64_t e = 0; e < t.E; ++e) mb.emplace_back(e, v);
        eng.feed(micro_batch(t, mb));
      }
      if (size > 1) EXPECT_TRUE(eng.example_norms().empty()) << what;  // nothing complete locally
      eng.reduce_view_group(tc);
      // Each example clipped once, by the group's rank 0, with the norm of its mean over ALL views.
      if (rank == 0) {
        ASSERT_EQ(static_cast<int64_t>(eng.example_norms().size()), t.E) << what;
        for (const auto& [e, n] : eng.example_norms())
          EXPECT_NEAR(n, ref.norms[static_cast<size_t>(e)], kEngineTol * n) << what << " example " << e;
      } else {
        EXPECT_TRUE(eng.example_norms().empty()) << what;
      }
      torch::Tensor got = eng.finish_step(tc, noise_spec(0.0, ref.C, 1.0), 0, false);
      EXPECT_LT(rel_err(got, ref.clipped_sum), kEngineTol) << what;
      EXPECT_EQ(eng.stats().examples, t.E) << what;
      if (C_rule == 0) EXPECT_EQ(eng.stats().clip_fraction, 1.0) << what;
      if (C_rule > 1) EXPECT_EQ(eng.stats().clip_fraction, 0.0) << what;
    }
  }
}

}  // namespace
}  // namespace vardp::dp
