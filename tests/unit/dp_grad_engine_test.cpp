// Per-example gradients of a tiny VAR through the DP engine (invariant 1: one example = one
// clipped gradient, the mean over its k views, flat over all trainable tensors; invariant 2:
// noise once per step whatever the micro-batch split; invariant 3: division by q*N).
//
// Every strategy is compared with the independent reference of dp_engine_test_support.hpp (one
// batch-of-one forward and backward per view, mean over views, clip and sum in float64) on
// micro-batches that hold SEVERAL examples: a micro-batch of one example takes a plain backward
// pass in every strategy, so a comparison on such micro-batches would prove nothing about the
// per-example machinery. Each comparison runs with C between the middle norms (some examples
// clipped, some not) and with C below every norm (all clipped: clipping a micro-batch's summed
// gradient instead of each example's would show).
#include <gtest/gtest.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <typeinfo>
#include <vector>

#include "dp_engine_test_support.hpp"
#include "vardp/dist/tensor_comm.hpp"
#include "vardp/dp/engine.hpp"
#include "vardp/model/var.hpp"

namespace vardp::dp {
namespace {

using namespace vardp::dp::enginetest;

// The tolerance of every comparison with the reference: kEngineTol (dp_engine_test_support.hpp
// says why 1e-5).
constexpr double kTol = kEngineTol;

std::map<std::string, double>& worst_by_strategy() {
  static std::map<std::string, double> w;
  return w;
}

// Every strategy, on three layouts (all rows in one micro-batch; several micro-batches with
// views of some examples spread over them; the same reversed), for two C, against the reference.
void check_strategies(Tiny& t, const Selector& sel, const std::string& kind) {
  TrainableSet set = TrainableSet::from_module(*t.var, sel);
  const Reference per_example = per_example_reference(t, set);
  const Layout split = split_batches(t.E, t.k);
  ASSERT_TRUE(every_micro_batch_has_several_examples(split)) << kind;
  if (t.k > 1) ASSERT_TRUE(spreads_an_example(split)) << kind;
  const std::vector<std::pair<std::string, Layout>> layouts{
      {"one", one_batch(t.E, t.k)}, {"split", split}, {"reversed", reversed(split)}};
  for (double C_rule : {-1.0, 0.0}) {
    const Reference ref = reclip(per_example, C_rule);
    const int64_t clipped = std::count_if(ref.norms.begin(), ref.norms.end(),
                                          [&](double n) { return clip_factor(n, ref.C) < 1; });
    ASSERT_GT(clipped, 0) << kind;
    if (C_rule == 0) ASSERT_EQ(clipped, t.E) << kind;
    for (const auto& st : all_strategies()) {
      for (const auto& [layout_name, layout] : layouts) {
        const std::string what = kind + " k=" + std::to_string(t.k) + " C=" + std::to_string(ref.C) + " " +
                                 layout_name + " " + st.name();
        EngineRun run = run_engine(t, sel, st, ref.C, layout);
        EXPECT_EQ(static_cast<int64_t>(run.norms.size()), t.E) << what;  // every example clipped once
        EXPECT_EQ(run.stats.micro_batches, static_cast<int64_t>(layout.size())) << what;
        EXPECT_EQ(run.stats.rows, t.E * t.k) << what;
        const EngineError err = worst_error(run, ref, set);
        EXPECT_LT(err.err, kTol) << what << ": worst at " << err.where;
        double& w = worst_by_strategy()[st.name()];
        w = std::max(w, err.err);
        if (st.s == GradStrategy::bk && st.rule == NormRule::ghost) EXPECT_EQ(run.stats.instantiated_norm_layers, 0);
        if (st.s == GradStrategy::bk && st.rule == NormRule::instantiate) EXPECT_EQ(run.stats.ghost_norm_layers, 0);
        if (st.s == GradStrategy::bk && st.rule == NormRule::cost && kind == "full" && t.k == 1 &&
            layout_name == "one") {
          // The hybrid rule picks both: word_embed (T=13, 4x32) by instantiation, mat_qkv
          // (T=14, 32x96) and the AdaLN linears (T=1) by ghost norm.
          EXPECT_GT(run.stats.ghost_norm_layers, 0);
          EXPECT_GT(run.stats.instantiated_norm_layers, 0);
        }
      }
    }
  }
}

struct Kind {
  std::string name;
  Selector sel;
};

std::vector<Kind> kinds() {
  return {{"word_embed", contains("word_embed.")},
          {"mat_qkv", contains("mat_qkv.weight")},
          {"attn.proj", contains("attn.proj.")},
          {"ffn", contains("ffn.")},
          {"ada_lin", contains("ada_lin.")},
          {"head", [](const std::string& n) { return n.rfind("head.", 0) == 0; }},
          {"q_bias", contains("q_bias")},
          {"v_bias", contains("v_bias")},
          {"scale_mul_1H11", contains("scale_mul_1H11")},
          {"class_emb", contains("class_emb.weight")},
          {"lvl_embed", contains("lvl_embed.weight")},
          {"pos_1LC", contains("pos_1LC")},
          {"pos_start", contains("pos_start")}};
}

// k views per example: 1 (several examples of one view per micro-batch) and 4 (several
// examples x 4 views, views of some examples split over micro-batches).
class EachKind : public ::testing::TestWithParam<int64_t> {};

TEST_P(EachKind, EveryStrategyEqualsThePerViewReferenceForEachTensorKind) {
  const int64_t k = GetParam();
  for (const auto& kind : kinds()) {
    Tiny t = make_tiny(k == 1 ? 5 : 4, k, 11);
    check_strategies(t, kind.sel, kind.name);
  }
}

TEST_P(EachKind, FullAndAdaLinOnlySets) {
  const int64_t k = GetParam();
  Tiny t = make_tiny(k == 1 ? 6 : 4, k, 12);
  check_strategies(t, {}, "full");
  check_strategies(t, is_ada_lin, "lntune");
}

TEST_P(EachKind, SharedAdaLnParameters) {
  const int64_t k = GetParam();
  TinyOptions o;
  o.shared_aln = true;
  Tiny t = make_tiny(4, k, 13, o);
  check_strategies(t, contains("ada_gss"), "ada_gss");
  check_strategies(t, contains("shared_ada_lin."), "shared_ada_lin");
  check_strategies(t, {}, "full(shared_aln)");
}

TEST_P(EachKind, LoraFactorsAndClassEmbedding) {
  const int64_t k = GetParam();
  Tiny t = make_tiny(k == 1 ? 5 : 4, k, 14);
  enable_lora_everywhere(t);
  check_strategies(t, is_lora_set, "lora");
}

INSTANTIATE_TEST_SUITE_P(Views, EachKind, ::testing::Values(1, 4));

TEST(PerExample, PartialGradientsOfEveryStrategyEqualTheReferenceGradients) {
  // Asking for every example as "partial" returns the unclipped per-example gradients (the
  // mean over the views given, here all k), from several examples in one micro-batch.
  Tiny t = make_tiny(3, 2, 14);
  TrainableSet set = TrainableSet::from_module(*t.var);
  const Reference ref = per_example_reference(t, set);
  for (const auto& st : all_strategies()) {
    auto grads = make_per_example_gradients(st.s, *t.var, set, st.rule);
    MicroBatch mb = micro_batch(t, one_batch(3, 2)[0]);
    RowGroups groups(mb.example_ids);
    MicroBatchGrads res = grads->run(mb, groups, {false, false, false}, 0.5, 1.0);
    ASSERT_EQ(res.partial_ids, (std::vector<int64_t>{0, 1, 2})) << st.name();
    EXPECT_TRUE(res.whole_ids.empty()) << st.name();
    double err = 0;
    for (int64_t e = 0; e < 3; ++e) err = std::max(err, rel_err(res.partial_grads[e], ref.grads[static_cast<size_t>(e)]));
    std::printf("[ report ] %s partial per-example gradients: max rel err %.3g\n", st.name().c_str(), err);
    EXPECT_LT(err, kTol) << st.name();
  }
}

TEST(PerExample, OneExampleManyViewsPerMicroBatchAlsoEqualsTheReference) {
  // Layout "one example x many views": every micro-batch holds views of one example only (the
  // plain-backward path of the engine), whole or split over micro-batches.
  Tiny t = make_tiny(3, 4, 15);
  TrainableSet set = TrainableSet::from_module(*t.var);
  const Reference ref = reference(t, set);
  const Layout whole{{{0, 0}, {0, 1}, {0, 2}, {0, 3}}, {{1, 0}, {1, 1}, {1, 2}, {1, 3}}, {{2, 0}, {2, 1}, {2, 2}, {2, 3}}};
  const Layout halves{{{0, 0}, {0, 1}}, {{1, 3}, {1, 2}}, {{0, 2}, {0, 3}}, {{2, 0}, {2, 1}, {2, 2}}, {{1, 0}, {1, 1}}, {{2, 3}}};
  for (const auto& st : all_strategies()) {
    for (const auto& [name, layout] : std::vector<std::pair<std::string, Layout>>{{"whole", whole}, {"halves", halves}}) {
      const EngineError err = worst_error(run_engine(t, {}, st, ref.C, layout), ref, set);
      EXPECT_LT(err.err, kTol) << name << " " << st.name() << ": worst at " << err.where;
    }
  }
}

TEST(EngineClipping, EveryClippedPerExampleGradientHasNormAtMostC) {
  // One example per lot (the plain-backward path, the same in every strategy) is the only way to
  // see one clipped gradient alone in the update; the per-example machinery's bound is checked
  // on lots of several examples in one micro-batch by NeighbouringLotsDifferByAtMostC.
  Tiny t = make_tiny(4, 2, 16);
  TrainableSet set = TrainableSet::from_module(*t.var);
  auto comm = dist::make_single_comm();
  dist::TensorComm tc(*comm);
  for (double C : {1e-3, 0.05, 1e3}) {
    for (const auto& st : all_strategies()) {
      for (int64_t e = 0; e < t.E; ++e) {
        // A lot of one example: the update (noise off, q*N = 1) is its clipped gradient.
        DpEngine eng(*t.var, set, EngineOptions{st.s, st.rule, C, t.k});
        eng.begin_step({e});
        eng.feed(micro_batch(t, {{e, 0}, {e, 1}}));
        torch::Tensor u = eng.finish_step(tc, noise_spec(0.0, C, 1.0), 0, /*write_grads=*/false);
        const double n = u.to(torch::kDouble).norm().item<double>();
        EXPECT_LE(n, C * (1 + 1e-6)) << st.name() << " C=" << C << " example " << e;
        if (C > 100) EXPECT_NEAR(n, eng.example_norms().at(e), 1e-5 * n);  // unclipped: untouched
      }
    }
  }
}

TEST(EngineClipping, NeighbouringLotsDifferByAtMostC) {
  // Sensitivity: removing one example from a lot (fed as ONE micro-batch of several examples)
  // moves the clipped sum by at most C.
  Tiny t = make_tiny(5, 2, 17);
  TrainableSet set = TrainableSet::from_module(*t.var);
  auto comm = dist::make_single_comm();
  dist::TensorComm tc(*comm);
  const double C = 0.05;
  for (const auto& st : all_strategies()) {
    auto update = [&](const std::vector<int64_t>& lot) {
      DpEngine eng(*t.var, set, EngineOptions{st.s, st.rule, C, t.k});
      eng.begin_step(lot);
      std::vector<Unit> units;
      for (int64_t e : lot) units.insert(units.end(), {{e, 0}, {e, 1}});
      eng.feed(micro_batch(t, units));
      EXPECT_EQ(eng.stats().clip_fraction, 0.0);  // set in finish_step only
      torch::Tensor u = eng.finish_step(tc, noise_spec(0.0, C, 1.0), 0, false).to(torch::kDouble);
      EXPECT_EQ(eng.stats().clip_fraction, 1.0) << st.name();  // C below every norm: the bound is tight
      return u;
    };
    torch::Tensor full = update({0, 1, 2, 3, 4});
    for (int64_t drop = 0; drop < 5; ++drop) {
      std::vector<int64_t> lot;
      for (int64_t e = 0; e < 5; ++e)
        if (e != drop) lot.push_back(e);
      const double d = (full - update(lot)).norm().item<double>();
      EXPECT_LE(d, C * (1 + 1e-5)) << st.name() << " without " << drop;
      EXPECT_GE(d, C * (1 - 1e-4)) << st.name() << " without " << drop;  // the dropped example was clipped to C
    }
  }
}

TEST(EngineNoise, AddedExactlyOncePerStepWhateverTheStrategyAndMicroBatchSplit) {
  // The noise of a step is update * q*N - clipped sum. It must be the same draw for every
  // strategy and split (one draw per step from the step's stream, not one per micro-batch), with
  // std sigma*C per coordinate (added once: twice would give sqrt(2) sigma C), the same draw for
  // an empty lot at that step, and a different draw at another step or with another secret.
  Tiny t = make_tiny(4, 4, 18);
  TrainableSet set = TrainableSet::from_module(*t.var);
  auto comm = dist::make_single_comm();
  dist::TensorComm tc(*comm);
  const double C = 0.1, sigma = 1.3, qN = 3.5;
  const int64_t step = 9;
  const NoiseSpec spec = noise_spec(sigma, C, qN);
  const int64_t P = set.numel();
  ASSERT_GT(P, 5000);  // enough coordinates for the std check below
  torch::Tensor noise0;
  for (const auto& st : all_strategies()) {
    for (const Layout& layout : {one_batch(4, 4), split_batches(4, 4)}) {
      DpEngine eng(*t.var, set, EngineOptions{st.s, st.rule, C, t.k});
      eng.begin_step({0, 1, 2, 3});
      for (const auto& units : layout) eng.feed(micro_batch(t, units));
      torch::Tensor sum = eng.local_clipped_sum().to(torch::kDouble);
      torch::Tensor u = eng.finish_step(tc, spec, step);
      torch::Tensor noise = u.to(torch::kDouble) * qN - sum;
      if (!noise0.defined()) {
        noise0 = noise;
        // Std of the sample std of P normals: sigma C / sqrt(2P); 6 of those (< 6 % here) is
        // far from the 41 % of a doubled noise and from the 100 % of a missing one.
        const double sd = noise.std().item<double>(), mean = noise.mean().item<double>();
        EXPECT_NEAR(sd / (sigma * C), 1.0, 6.0 / std::sqrt(2.0 * static_cast<double>(P)));
        EXPECT_LT(std::abs(mean), 6.0 * sigma * C / std::sqrt(static_cast<double>(P)));
      } else {
        EXPECT_LT(rel_err(noise, noise0), 1e-5) << st.name();
      }
      // ... and the update is what every trainable tensor's .grad now holds.
      for (int64_t i = 0; i < set.size(); ++i)
        EXPECT_TRUE(torch::equal(set.tensor(i).grad(), set.slice(u, i))) << set.name(i);
      EXPECT_EQ(eng.stats().examples, 4);
      EXPECT_EQ(eng.stats().lot_size, 4);
    }
  }
  // An empty lot is a valid step: the update is the step's noise alone, divided by q*N.
  DpEngine eng(*t.var, set, EngineOptions{GradStrategy::bk, NormRule::cost, C, t.k});
  eng.begin_step({});
  torch::Tensor u = eng.finish_step(tc, spec, step);
  EXPECT_LT(rel_err(u.to(torch::kDouble) * qN, noise0), 1e-5);
  EXPECT_EQ(eng.stats().examples, 0);
  EXPECT_EQ(eng.stats().lot_size, 0);
  // Another step draws another noise (correlation ~ N(0, 1/P), not ~1).
  eng.begin_step({});
  torch::Tensor other = eng.finish_step(tc, spec, step + 1).to(torch::kDouble) * qN;
  const double corr = (other * noise0).sum().item<double>() / (other.norm() * noise0.norm()).item<double>();
  EXPECT_LT(std::abs(corr), 0.1);
  EXPECT_NEAR(other.std().item<double>() / (sigma * C), 1.0, 6.0 / std::sqrt(2.0 * static_cast<double>(P)));
  // Another run secret draws another noise at the same step (the noise is keyed by the secret).
  const RunSecret another = RunSecret::from_hex(std::string(64, 'e'));
  NoiseSpec spec2 = spec;
  spec2.secret = &another;
  eng.begin_step({});
  torch::Tensor keyed = eng.finish_step(tc, spec2, step).to(torch::kDouble) * qN;
  const double corr2 = (keyed * noise0).sum().item<double>() / (keyed.norm() * noise0.norm()).item<double>();
  EXPECT_LT(std::abs(corr2), 0.1);
}

TEST(EngineStats, LotSizeMeanNormAndClipFraction) {
  Tiny t = make_tiny(4, 2, 19);
  TrainableSet set = TrainableSet::from_module(*t.var);
  const Reference ref = reference(t, set);  // C between the middle norms: half clipped
  auto comm = dist::make_single_comm();
  dist::TensorComm tc(*comm);
  DpEngine eng(*t.var, set, EngineOptions{GradStrategy::bk, NormRule::cost, ref.C, t.k});
  eng.begin_step({0, 1, 2, 3});
  for (const auto& units : split_batches(4, 2)) eng.feed(micro_batch(t, units));
  eng.finish_step(tc, noise_spec(0.0, ref.C, 4.0), 3);
  double mean = 0, max = 0;
  for (double n : ref.norms) {
    mean += n / 4;
    max = std::max(max, n);
  }
  EXPECT_EQ(eng.stats().lot_size, 4);
  EXPECT_EQ(eng.stats().examples, 4);
  EXPECT_EQ(eng.stats().step, 3);
  EXPECT_EQ(eng.stats().micro_batches, 3);
  EXPECT_EQ(eng.stats().rows, 8);
  EXPECT_NEAR(eng.stats().mean_norm, mean, 1e-5 * mean);
  EXPECT_NEAR(eng.stats().max_norm, max, 1e-5 * max);
  EXPECT_DOUBLE_EQ(eng.stats().clip_fraction, 0.5);
}

TEST(Engine, RejectsBrokenStepsInsteadOfMiscounting) {
  Tiny t = make_tiny(3, 2, 20);
  TrainableSet set = TrainableSet::from_module(*t.var);
  auto comm = dist::make_single_comm();
  dist::TensorComm tc(*comm);
  expect_engine_error<Error>([&] { DpEngine e(*t.var, set, EngineOptions{GradStrategy::bk, NormRule::cost, 0.0, 2}); },
                      "max_grad_norm must be positive", "C = 0");
  expect_engine_error<Error>([&] { DpEngine e(*t.var, set, EngineOptions{GradStrategy::bk, NormRule::cost, 1.0, 0}); },
                      "augmult must be >= 1", "k = 0");

  DpEngine eng(*t.var, set, EngineOptions{GradStrategy::bk, NormRule::cost, 1.0, 2});
  expect_engine_error<Error>([&] { eng.feed(micro_batch(t, {{0, 0}, {1, 0}})); }, "feed() outside a step", "no step");
  expect_engine_error<Error>([&] { eng.begin_step({0, 1, 0}); }, "example 0 appears twice in the lot", "duplicate");
  eng.begin_step({0, 1});
  expect_engine_error<Error>([&] { eng.feed(micro_batch(t, {{2, 0}, {0, 0}})); },
                      "example 2 is not in the lot of this step", "foreign example");
  // The rejected micro-batch left nothing behind: example 0 takes both views now.
  eng.feed(micro_batch(t, {{0, 0}, {0, 1}, {1, 0}}));
  expect_engine_error<Error>([&] { eng.feed(micro_batch(t, {{0, 0}, {1, 1}})); },
                      "example 0 already has all 2 views in this step", "view of a clipped example");
  expect_engine_error<Error>([&] { eng.feed(micro_batch(t, {{1, 0}, {1, 1}})); },
                      "example 1 would get 3 views, augmult is 2", "a third view");
  // Example 1 still lacks a view: the step cannot be privatised (every rank learns it).
  expect_engine_error<CollectiveError>([&] { eng.finish_step(tc, noise_spec(1.0, 1.0, 2.0), 0); },
                                "this rank holds examples with fewer than 2 views (first: 1)", "pending view");
  expect_engine_error<Error>([&] { eng.finish_step(tc, noise_spec(1.0, 1.0, 2.0), 0); }, "finish_step() outside a step",
                      "finish twice");
  // An example missing from the micro-batches altogether.
  eng.begin_step({0, 1});
  eng.feed(micro_batch(t, {{0, 0}, {0, 1}}));
  expect_engine_error<CollectiveError>([&] { eng.finish_step(tc, noise_spec(1.0, 1.0, 2.0), 0); },
                                "1 examples were clipped but the lot has 2", "missing example");
  // Noise calibrated for another C than the clipping.
  eng.begin_step({0});
  eng.feed(micro_batch(t, {{0, 0}, {0, 1}}));
  expect_engine_error<Error>([&] { eng.finish_step(tc, noise_spec(1.0, 0.5, 2.0), 0); },
                      "noise calibrated for max_grad_norm 0.5 but gradients clipped to 1", "noise for another C");
  // Noise without the run secret (the mechanism's coins) is refused, not drawn from a default key.
  eng.begin_step({0});
  eng.feed(micro_batch(t, {{0, 0}, {0, 1}}));
  NoiseSpec keyless = noise_spec(1.0, 1.0, 2.0);
  keyless.secret = nullptr;
  expect_engine_error<Error>([&] { eng.finish_step(tc, keyless, 0); }, "DP noise needs the run secret", "no secret");
  // Label dropout must be explicit per row: a rate would draw anew for every subset of rows.
  model::ForwardOptions rate;
  rate.cond_drop_rate = 0.1;
  expect_engine_error<Error>([&] { var_row_loss(t.var, t.labels, t.x, t.targets, rate); },
                      "label dropout must come as an explicit per-row label_drop_mask", "drop rate");
  // A trainable tensor without a per-example hook: only the reference can handle it.
  // (The holder lives in a shared_ptr: the hooks walk the module tree from the root, which
  // LibTorch allows for shared modules only. On the stack, LibTorch's own error came first, and
  // the old "any exception" version of this test passed on it.)
  auto holder = std::make_shared<torch::nn::Module>();
  holder->register_module("var", t.var);
  holder->register_parameter("extra", torch::zeros({3}));
  DpEngine bad(*holder, TrainableSet::from_module(*holder, contains("extra")),
               EngineOptions{GradStrategy::instantiate, NormRule::cost, 1.0, 1});
  bad.begin_step({0, 1});
  expect_engine_error<Error>([&] { bad.feed(micro_batch(t, {{0, 0}, {1, 0}})); },
                      "trainable tensor 'extra' did not pass a per-example-gradient hook", "unhooked tensor");
}

// Prints the worst relative error of each strategy over all comparisons once every test ran.
class ReportWorstErrors : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const auto& kv : worst_by_strategy())
      std::printf("[ report ] %-16s max rel err %.3g\n", kv.first.c_str(), kv.second);
  }
};
[[maybe_unused]] ::testing::Environment* const kReport = ::testing::AddGlobalTestEnvironment(new ReportWorstErrors);

}  // namespace
}  // namespace vardp::dp
