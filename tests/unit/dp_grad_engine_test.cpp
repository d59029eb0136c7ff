// Per-example gradients of a tiny VAR through the DP engine (invariant 1: one example = one
// clipped gradient, the mean over its k views, flat over all trainable tensors; invariant 2:
// noise once per step whatever the micro-batch split; invariant 3: division by q*N).
// Every strategy is compared with an independent reference written here: for each example, one
// forward of its k views and one backward of their mean loss.
#include <gtest/gtest.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "vardp/dist/tensor_comm.hpp"
#include "vardp/dp/engine.hpp"
#include "vardp/model/var.hpp"
#include "tensor_compare.hpp"

namespace vardp::dp {
namespace {

using vardp::test::relative_error;

using Selector = std::function<bool(const std::string&)>;
using Unit = std::pair<int64_t, int64_t>;  // (example, view)
using Layout = std::vector<std::vector<Unit>>;

// float32 throughout: VAR.forward casts its inputs to float32, so the model cannot run in double.
constexpr double kTol = 1e-5;

model::VARConfig tiny_config(bool shared_aln) {
  model::VARConfig c = model::VARConfig::for_depth(2, /*classes=*/4, /*vocab=*/16, /*Cvae=*/4, {1, 2, 3});
  c.embed_dim = 32;
  c.num_heads = 2;
  c.drop_path_rate = 0;
  c.shared_aln = shared_aln;
  return c;
}

// A tiny VAR with every parameter perturbed (so q/v biases, positions... are not at their zero
// or constant inits) and a data set of E examples x k views: row e*k + v.
struct Tiny {
  model::VAR var{nullptr};
  int64_t E = 0, k = 1;
  torch::Tensor labels, x, targets;
};

Tiny make_tiny(int64_t E, int64_t k, uint64_t seed, bool shared_aln = false) {
  torch::manual_seed(seed);
  Tiny t;
  t.var = model::VAR(tiny_config(shared_aln));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : t.var->parameters()) p.add_(torch::randn_like(p) * 0.1);
  }
  t.var->train();
  t.E = E;
  t.k = k;
  const auto& c = t.var->config();
  t.labels = torch::randint(0, c.num_classes, {E}, torch::kLong).repeat_interleave(k);
  t.x = torch::randn({E * k, c.L() - c.first_l(), c.Cvae});
  t.targets = torch::randint(0, c.vocab_size, {E * k, c.L()}, torch::kLong);
  return t;
}

torch::Tensor idx(const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong); }

MicroBatch micro_batch(const Tiny& t, const std::vector<Unit>& units) {
  std::vector<int64_t> rows, ids;
  for (const auto& u : units) {
    rows.push_back(u.first * t.k + u.second);
    ids.push_back(u.first);
  }
  torch::Tensor r = idx(rows);
  return MicroBatch{ids, var_row_loss(t.var, t.labels.index_select(0, r), t.x.index_select(0, r),
                                      t.targets.index_select(0, r))};
}

// Independent reference: example e's gradient = gradient of the mean loss of its k views.
torch::Tensor reference_grad(Tiny& t, const TrainableSet& set, int64_t e) {
  torch::Tensor r = torch::arange(e * t.k, (e + 1) * t.k, torch::kLong);
  torch::Tensor logits = t.var->forward(t.labels.index_select(0, r), t.x.index_select(0, r));
  torch::Tensor loss = model::cross_entropy_loss(logits, t.targets.index_select(0, r)).per_example.mean();
  auto grads = torch::autograd::grad({loss}, set.tensors(), {}, false, false, true);
  return set.flatten(grads);
}

struct Expected {
  std::vector<double> norms;
  torch::Tensor clipped_sum;  // double
  double C = 0;
};

// Norms and clipped sum of the reference; C between the middle norms so that some examples are
// clipped and some are not (both branches of the clip factor are exercised).
Expected expected_for(Tiny& t, const TrainableSet& set, double C = -1) {
  Expected ex;
  std::vector<torch::Tensor> grads;
  for (int64_t e = 0; e < t.E; ++e) {
    grads.push_back(reference_grad(t, set, e).to(torch::kDouble));
    ex.norms.push_back(grads.back().norm().item<double>());
  }
  if (C < 0) {
    std::vector<double> s = ex.norms;
    std::sort(s.begin(), s.end());
    C = 0.5 * (s[s.size() / 2 - 1] + s[s.size() / 2]);
  }
  ex.C = C;
  ex.clipped_sum = torch::zeros_like(grads[0]);
  for (int64_t e = 0; e < t.E; ++e)
    ex.clipped_sum += grads[static_cast<size_t>(e)] * std::min(1.0, C / (ex.norms[static_cast<size_t>(e)] + 1e-6));
  return ex;
}

struct Run {
  torch::Tensor sum;
  std::map<int64_t, double> norms;
  StepStats stats;
};

Run run_engine(Tiny& t, const Selector& sel, GradStrategy s, NormRule rule, double C, const Layout& layout) {
  DpEngine eng(*t.var, TrainableSet::from_module(*t.var, sel), EngineOptions{s, rule, C, t.k});
  std::vector<int64_t> lot;
  for (int64_t e = 0; e < t.E; ++e) lot.push_back(e);
  eng.begin_step(lot);
  for (const auto& units : layout) eng.feed(micro_batch(t, units));
  return Run{eng.local_clipped_sum().clone(), eng.example_norms(), eng.stats()};
}

// All views of all examples in one micro-batch, views interleaved (e0v0, e1v0, ..., e0v1, ...).
Layout one_batch(int64_t E, int64_t k) {
  std::vector<Unit> u;
  for (int64_t v = 0; v < k; ++v)
    for (int64_t e = 0; e < E; ++e) u.emplace_back(e, v);
  return {u};
}

// Views split over three micro-batches: some examples whole in one micro-batch, others spread.
Layout split_batches(int64_t E, int64_t k) {
  Layout l(3);
  for (int64_t e = 0; e < E; ++e)
    for (int64_t v = 0; v < k; ++v) {
      if (e % 2 == 0)
        l[static_cast<size_t>(e / 2 % 3)].emplace_back(e, v);  // whole in one micro-batch
      else
        l[static_cast<size_t>((e + v) % 3)].emplace_back(e, v);  // spread over all three
    }
  return l;
}

struct Strategy {
  GradStrategy s;
  NormRule rule;
  std::string name() const {
    return s == GradStrategy::bk ? std::string("bk/") + norm_rule_name(rule) : grad_strategy_name(s);
  }
};
const std::vector<Strategy> kStrategies{{GradStrategy::reference, NormRule::cost},
                                        {GradStrategy::instantiate, NormRule::cost},
                                        {GradStrategy::bk, NormRule::cost},
                                        {GradStrategy::bk, NormRule::ghost},
                                        {GradStrategy::bk, NormRule::instantiate}};

std::map<std::string, double>& worst() {
  static std::map<std::string, double> w;
  return w;
}

// Compares a run with the reference; returns the worst relative error (norms, clipped sum,
// and the clipped sum of each trainable tensor).
double compare(const Run& run, const Expected& ex, const TrainableSet& set, const std::string& what) {
  double err = 0;
  EXPECT_EQ(run.norms.size(), ex.norms.size()) << what;
  for (const auto& kv : run.norms) {
    const double want = ex.norms.at(static_cast<size_t>(kv.first));
    err = std::max(err, std::abs(kv.second - want) / want);
  }
  err = std::max(err, relative_error(run.sum, ex.clipped_sum));
  for (int64_t i = 0; i < set.size(); ++i) {
    torch::Tensor want = set.slice(ex.clipped_sum, i);
    if (want.norm().item<double>() > 0) err = std::max(err, relative_error(set.slice(run.sum, i), want));
  }
  EXPECT_LT(err, kTol) << what;
  return err;
}

void check_strategies(Tiny& t, const Selector& sel, const std::string& kind) {
  TrainableSet set = TrainableSet::from_module(*t.var, sel);
  Expected ex = expected_for(t, set);
  for (const auto& st : kStrategies) {
    for (const auto& [layout_name, layout] :
         std::vector<std::pair<std::string, Layout>>{{"one", one_batch(t.E, t.k)}, {"split", split_batches(t.E, t.k)}}) {
      const std::string what = kind + " k=" + std::to_string(t.k) + " " + layout_name + " " + st.name();
      Run run = run_engine(t, sel, st.s, st.rule, ex.C, layout);
      double& w = worst()[st.name()];
      w = std::max(w, compare(run, ex, set, what));
      if (st.s == GradStrategy::bk && st.rule == NormRule::ghost) EXPECT_EQ(run.stats.instantiated_norm_layers, 0);
      if (st.s == GradStrategy::bk && st.rule == NormRule::instantiate) EXPECT_EQ(run.stats.ghost_norm_layers, 0);
      if (st.s == GradStrategy::bk && st.rule == NormRule::cost && kind == "full" && t.k == 1 && layout_name == "one") {
        // The hybrid rule picks both: word_embed (T=13, 4x32) by instantiation, mat_qkv
        // (T=14, 32x96) and the AdaLN linears (T=1) by ghost norm.
        EXPECT_GT(run.stats.ghost_norm_layers, 0);
        EXPECT_GT(run.stats.instantiated_norm_layers, 0);
      }
    }
  }
}

struct Kind {
  std::string name;
  Selector sel;
};

Selector contains(const std::string& s) {
  return [s](const std::string& n) { return n.find(s) != std::string::npos; };
}

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

class EachKind : public ::testing::TestWithParam<int64_t> {};

TEST_P(EachKind, EveryStrategyEqualsTheReferenceForEachTensorKind) {
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
  Tiny t = make_tiny(4, k, 13, /*shared_aln=*/true);
  check_strategies(t, contains("ada_gss"), "ada_gss");
  check_strategies(t, contains("shared_ada_lin."), "shared_ada_lin");
  check_strategies(t, {}, "full(shared_aln)");
}

// LoRA: the A/B factors on every target layer (mat_qkv and proj, fc1 and fc2, ada_lin, head and
// head AdaLN) plus the class embedding, as the training job's "lora" adaptation trains them.
TEST_P(EachKind, LoraFactorsAndClassEmbedding) {
  const int64_t k = GetParam();
  Tiny t = make_tiny(k == 1 ? 5 : 4, k, 14);
  at::Generator gen = at::detail::createCPUGenerator(5);
  for (auto& item : t.var->named_modules("", false))
    if (auto* lin = dynamic_cast<model::LinearImpl*>(item.value().get()); lin && item.key() != "word_embed")
      lin->enable_lora(2, 4.0, 0.0, "kaiming", gen);
  {
    torch::NoGradGuard no_grad;  // B = 0 at init would make every B gradient trivially equal
    for (auto& p : t.var->named_parameters(true))
      if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.1, gen);
  }
  const Selector lora_set = [](const std::string& n) {
    return n.find(".lora_") != std::string::npos || n == "class_emb.weight";
  };
  check_strategies(t, lora_set, "lora");
}

INSTANTIATE_TEST_SUITE_P(Views, EachKind, ::testing::Values(1, 4));

TEST(PerExample, InstantiatedGradientsEqualTheReferenceGradients) {
  // Asking for every example as "partial" returns the unclipped per-example gradients.
  Tiny t = make_tiny(3, 2, 14);
  TrainableSet set = TrainableSet::from_module(*t.var);
  auto grads = make_per_example_gradients(GradStrategy::instantiate, *t.var, set);
  MicroBatch mb = micro_batch(t, one_batch(3, 2)[0]);
  RowGroups groups(mb.example_ids);
  MicroBatchGrads res = grads->run(mb, groups, {false, false, false}, 0.5, 1.0);
  ASSERT_EQ(res.partial_ids, (std::vector<int64_t>{0, 1, 2}));
  double err = 0;
  for (int64_t e = 0; e < 3; ++e) err = std::max(err, relative_error(res.partial_grads[e], reference_grad(t, set, e)));
  std::printf("[ report ] instantiated per-example gradients: max rel err %.3g\n", err);
  EXPECT_LT(err, kTol);
}

TEST(PerExample, OneExampleManyViewsUsesAPlainBackward) {
  // Layout "one example x many views": every micro-batch holds views of one example only.
  Tiny t = make_tiny(3, 4, 15);
  TrainableSet set = TrainableSet::from_module(*t.var);
  Expected ex = expected_for(t, set);
  for (const auto& st : kStrategies) {
    Layout whole{{{0, 0}, {0, 1}, {0, 2}, {0, 3}}, {{1, 0}, {1, 1}, {1, 2}, {1, 3}}, {{2, 0}, {2, 1}, {2, 2}, {2, 3}}};
    Layout halves{{{0, 0}, {0, 1}}, {{1, 3}, {1, 2}}, {{0, 2}, {0, 3}}, {{2, 0}, {2, 1}, {2, 2}}, {{1, 0}, {1, 1}}, {{2, 3}}};
    compare(run_engine(t, {}, st.s, st.rule, ex.C, whole), ex, set, "one-example whole " + st.name());
    compare(run_engine(t, {}, st.s, st.rule, ex.C, halves), ex, set, "one-example halves " + st.name());
  }
}

TEST(EngineClipping, EveryClippedPerExampleGradientHasNormAtMostC) {
  Tiny t = make_tiny(4, 2, 16);
  TrainableSet set = TrainableSet::from_module(*t.var);
  auto comm = dist::make_single_comm();
  dist::TensorComm tc(*comm);
  for (double C : {1e-3, 0.05, 1e3}) {
    for (const auto& st : kStrategies) {
      for (int64_t e = 0; e < t.E; ++e) {
        // A lot of one example: the update (noise off, q*N = 1) is its clipped gradient.
        DpEngine eng(*t.var, set, EngineOptions{st.s, st.rule, C, t.k});
        eng.begin_step({e});
        eng.feed(micro_batch(t, {{e, 0}, {e, 1}}));
        torch::Tensor u = eng.finish_step(tc, NoiseSpec{0.0, C, 1.0, 1}, 0, /*write_grads=*/false);
        const double n = u.to(torch::kDouble).norm().item<double>();
        EXPECT_LE(n, C * (1 + 1e-6)) << st.name() << " C=" << C << " example " << e;
        if (C > 100) EXPECT_NEAR(n, eng.example_norms().at(e), 1e-5 * n);  // unclipped: untouched
      }
    }
  }
}

TEST(EngineClipping, NeighbouringLotsDifferByAtMostC) {
  Tiny t = make_tiny(5, 2, 17);
  TrainableSet set = TrainableSet::from_module(*t.var);
  auto comm = dist::make_single_comm();
  dist::TensorComm tc(*comm);
  const double C = 0.05;
  for (const auto& st : kStrategies) {
    auto update = [&](const std::vector<int64_t>& lot) {
      DpEngine eng(*t.var, set, EngineOptions{st.s, st.rule, C, t.k});
      eng.begin_step(lot);
      std::vector<Unit> units;
      for (int64_t e : lot) units.insert(units.end(), {{e, 0}, {e, 1}});
      eng.feed(micro_batch(t, units));
      return eng.finish_step(tc, NoiseSpec{0.0, C, 1.0, 1}, 0, false).to(torch::kDouble);
    };
    torch::Tensor full = update({0, 1, 2, 3, 4});
    for (int64_t drop = 0; drop < 5; ++drop) {
      std::vector<int64_t> lot;
      for (int64_t e = 0; e < 5; ++e)
        if (e != drop) lot.push_back(e);
      EXPECT_LE((full - update(lot)).norm().item<double>(), C * (1 + 1e-5)) << st.name() << " without " << drop;
    }
  }
}

TEST(EngineNoise, AddedExactlyOncePerStepWhateverTheMicroBatchSplit) {
  Tiny t = make_tiny(4, 4, 18);
  TrainableSet set = TrainableSet::from_module(*t.var);
  auto comm = dist::make_single_comm();
  dist::TensorComm tc(*comm);
  const double C = 0.1, sigma = 1.3, qN = 3.5;
  const int64_t step = 9;
  const NoiseSpec spec{sigma, C, qN, 4242};
  torch::Tensor noise = gaussian_noise(torch::zeros({set.numel()}), sigma * C, 4242, step);
  for (const auto& st : kStrategies) {
    std::vector<torch::Tensor> updates;
    for (const Layout& layout : {one_batch(4, 4), split_batches(4, 4)}) {
      DpEngine eng(*t.var, set, EngineOptions{st.s, st.rule, C, t.k});
      eng.begin_step({0, 1, 2, 3});
      for (const auto& units : layout) eng.feed(micro_batch(t, units));
      torch::Tensor sum = eng.local_clipped_sum().clone();
      torch::Tensor u = eng.finish_step(tc, spec, step);
      // update = (clipped sum + ONE draw of the (seed, step) stream) / q*N.
      EXPECT_LT(relative_error(u * qN - sum, noise), 1e-6) << st.name();
      // ... and it is what .grad now holds.
      EXPECT_TRUE(torch::equal(set.tensor(0).grad().reshape({-1}), set.slice(u, 0).reshape({-1})));
      EXPECT_EQ(eng.stats().examples, 4);
      EXPECT_EQ(eng.stats().lot_size, 4);
      updates.push_back(u);
    }
    EXPECT_LT(relative_error(updates[0], updates[1]), 1e-6) << st.name();
  }
  // An empty lot is a valid step: the update is the noise alone.
  DpEngine eng(*t.var, set, EngineOptions{GradStrategy::bk, NormRule::cost, C, t.k});
  eng.begin_step({});
  torch::Tensor u = eng.finish_step(tc, spec, step);
  EXPECT_TRUE(torch::allclose(u, noise / qN, 1e-6, 1e-9));
  EXPECT_EQ(eng.stats().examples, 0);
}

TEST(EngineStats, LotSizeMeanNormAndClipFraction) {
  Tiny t = make_tiny(4, 1, 19);
  TrainableSet set = TrainableSet::from_module(*t.var);
  Expected ex = expected_for(t, set);  // C between the middle norms: half clipped
  auto comm = dist::make_single_comm();
  dist::TensorComm tc(*comm);
  DpEngine eng(*t.var, set, EngineOptions{GradStrategy::bk, NormRule::cost, ex.C, 1});
  eng.begin_step({0, 1, 2, 3});
  eng.feed(micro_batch(t, one_batch(4, 1)[0]));
  eng.finish_step(tc, NoiseSpec{0.0, ex.C, 4.0, 1}, 3);
  double mean = 0;
  for (double n : ex.norms) mean += n / 4;
  EXPECT_EQ(eng.stats().lot_size, 4);
  EXPECT_EQ(eng.stats().step, 3);
  EXPECT_NEAR(eng.stats().mean_norm, mean, 1e-5 * mean);
  EXPECT_DOUBLE_EQ(eng.stats().clip_fraction, 0.5);
}

TEST(Engine, RejectsBrokenStepsInsteadOfMiscounting) {
  Tiny t = make_tiny(3, 2, 20);
  TrainableSet set = TrainableSet::from_module(*t.var);
  auto comm = dist::make_single_comm();
  dist::TensorComm tc(*comm);
  DpEngine eng(*t.var, set, EngineOptions{GradStrategy::bk, NormRule::cost, 1.0, 2});
  eng.begin_step({0, 1});
  EXPECT_THROW(eng.feed(micro_batch(t, {{2, 0}, {0, 0}})), std::exception);  // 2 is not in the lot
  eng.feed(micro_batch(t, {{0, 0}, {0, 1}, {1, 0}}));
  EXPECT_THROW(eng.feed(micro_batch(t, {{0, 0}})), std::exception);  // a third view of example 0
  // Example 1 still lacks a view: the step cannot be privatised.
  EXPECT_THROW(eng.finish_step(tc, NoiseSpec{1.0, 1.0, 2.0, 1}, 0), std::exception);
  // An example missing from the micro-batches altogether.
  eng.begin_step({0, 1});
  eng.feed(micro_batch(t, {{0, 0}, {0, 1}}));
  EXPECT_THROW(eng.finish_step(tc, NoiseSpec{1.0, 1.0, 2.0, 1}, 0), std::exception);
  // Noise calibrated for another C.
  eng.begin_step({0});
  eng.feed(micro_batch(t, {{0, 0}, {0, 1}}));
  EXPECT_THROW(eng.finish_step(tc, NoiseSpec{1.0, 0.5, 2.0, 1}, 0), std::exception);
  // A trainable tensor without a per-example hook: only the reference can handle it.
  torch::nn::Module holder;
  holder.register_module("var", t.var);
  torch::Tensor extra = holder.register_parameter("extra", torch::zeros({3}));
  DpEngine bad(holder, TrainableSet::from_module(holder, contains("extra")),
               EngineOptions{GradStrategy::instantiate, NormRule::cost, 1.0, 1});
  bad.begin_step({0, 1});
  EXPECT_THROW(bad.feed(micro_batch(t, {{0, 0}, {1, 0}})), std::exception);
}

// Prints the worst relative error of each strategy over all comparisons once every test ran.
class ReportWorstErrors : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const auto& kv : worst()) std::printf("[ report ] %-16s max rel err %.3g\n", kv.first.c_str(), kv.second);
  }
};
[[maybe_unused]] ::testing::Environment* const kReport = ::testing::AddGlobalTestEnvironment(new ReportWorstErrors);

}  // namespace
}  // namespace vardp::dp
