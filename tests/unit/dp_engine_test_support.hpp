// Test support for the DP engine tests (tests/unit/dp_*engine*_test.cpp, tests/mpi/dp_engine_*):
// a tiny VAR with a data set of E examples x k views, explicit per-row randomness (label
// dropout, drop-path, the null class), micro-batch layouts, and an INDEPENDENT reference of the
// clipped sum that shares no code with the engine's per-example machinery: every (example, view)
// row gets its own batch-of-one forward and a plain autograd backward, the k view gradients are
// averaged in float64, clipped in float64 with the clip factor of privatize.hpp and summed in
// float64. A bug in grouping rows into examples, in the ghost norm, in the
// book-keeping sum, in the accumulation of split views or in the slicing of the per-row
// randomness makes the engine disagree with this reference.
//
// Everything lives in a named namespace with inline functions: the unit tests are compiled in
// unity batches, where anonymous-namespace helpers of two test files would collide.
#pragma once
#include <gtest/gtest.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "vardp/dp/engine.hpp"
#include "vardp/dp/per_example.hpp"
#include "vardp/dp/privatize.hpp"
#include "vardp/dp/secret_coins.hpp"
#include "vardp/model/linear.hpp"
#include "vardp/model/var.hpp"
#include "vardp/util/error.hpp"

namespace vardp::dp::enginetest {

using Unit = std::pair<int64_t, int64_t>;  // (example, view)
using Layout = std::vector<std::vector<Unit>>;
using Selector = std::function<bool(const std::string&)>;

// The tolerance of an engine run against the reference (relative, float64 norms). The model runs
// in float32 (VAR.forward casts its inputs to float32, so it cannot run in double). Engine and
// reference differ in batch composition (micro-batch vs batch of one) and in summation order
// (Gram matrices, einsums and per-row replicas vs autograd): float32 rounding, eps 6e-8 over sums
// of a few hundred terms, gives ~1e-6 relative (the tests print the worst they saw). A real bug -
// a row in the wrong example, a view missing or counted twice, a wrong clip factor, a clipped
// micro-batch sum, randomness attached to the wrong row - is an error of 1e-2 or more.
constexpr double kEngineTol = 1e-5;

inline Selector contains(const std::string& s) {
  return [s](const std::string& n) { return n.find(s) != std::string::npos; };
}

struct TinyOptions {
  int64_t depth = 2;
  bool shared_aln = false;
  // Drop-path needs train() mode and a positive rate; the per-block rates are
  // linspace(0, rate, depth) as in the official code, so block 0 never drops.
  double drop_path_rate = 0.0;
  int64_t classes = 4;
};

// A tiny VAR with every parameter perturbed (so q/v biases, positions... are not at their zero
// or constant inits) and a data set of E examples x k views: row e*k + v.
struct Tiny {
  model::VAR var{nullptr};
  int64_t E = 0, k = 1;
  torch::Tensor labels, x, targets;  // rows e*k + v
  // Explicit per-row randomness, as the trainer passes it (model::ForwardOptions); undefined
  // when not used. label_drop (E*k) bool: the row's label becomes the null class num_classes;
  // keep (depth, E*k) float 0/1: drop-path keep decisions per block and row.
  torch::Tensor label_drop, keep;
  double label_smoothing = 0.0;

  int64_t row(int64_t e, int64_t v) const { return e * k + v; }
  int64_t null_class() const { return var->config().num_classes; }
};

inline Tiny make_tiny(int64_t E, int64_t k, uint64_t seed, const TinyOptions& o = {}) {
  torch::manual_seed(seed);
  model::VARConfig c = model::VARConfig::for_depth(o.depth, o.classes, /*vocab=*/16, /*Cvae=*/4, {1, 2, 3});
  c.embed_dim = 32;
  c.num_heads = 2;
  c.drop_path_rate = o.drop_path_rate;
  c.shared_aln = o.shared_aln;
  Tiny t;
  t.var = model::VAR(c);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : t.var->parameters()) p.add_(torch::randn_like(p) * 0.1);
  }
  t.var->train();
  t.E = E;
  t.k = k;
  t.labels = torch::randint(0, c.num_classes, {E}, torch::kLong).repeat_interleave(k);
  t.x = torch::randn({E * k, c.L() - c.first_l(), c.Cvae});
  t.targets = torch::randint(0, c.vocab_size, {E * k, c.L()}, torch::kLong);
  return t;
}

// Per-row randomness with every case present: some examples carry the null class as their
// label, some views have their label dropped and others of the same example not, and every block
// with a positive drop-path rate drops some rows and keeps others (views of one example differ).
inline void add_row_randomness(Tiny& t, uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t R = t.E * t.k;
  const auto& rates = t.var->drop_path_rates();
  const int64_t depth = static_cast<int64_t>(rates.size());
  // Examples 0 and 3 (when present) are unconditional rows already: the null class as label.
  for (int64_t e : {int64_t{0}, int64_t{3}})
    if (e < t.E) t.labels.narrow(0, e * t.k, t.k).fill_(t.null_class());
  t.label_drop = torch::rand({R}) < 0.35;
  // Example 1 (a real class): view 0 dropped, view 1 (or, with k = 1, example 2) kept, whatever
  // the draw, so the views of one example see different labels.
  if (R > t.k + 1) {
    t.label_drop[t.row(1, 0)] = true;
    t.label_drop[t.row(1, 0) + 1] = false;
  }
  t.keep = torch::ones({depth, R});
  for (int64_t d = 0; d < depth; ++d) {
    if (rates[static_cast<size_t>(d)] <= 0) continue;
    torch::Tensor kd = (torch::rand({R}) >= rates[static_cast<size_t>(d)]).to(torch::kFloat);
    kd[0] = 0.f;  // at least one dropped and one kept row per block
    kd[R - 1] = 1.f;
    t.keep[d].copy_(kd);
  }
}

inline torch::Tensor index_of_rows(const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong); }

// The engine's input: the units' rows (in the units' order) with their own randomness.
inline MicroBatch micro_batch(const Tiny& t, const std::vector<Unit>& units) {
  std::vector<int64_t> rows, ids;
  for (const auto& u : units) {
    rows.push_back(t.row(u.first, u.second));
    ids.push_back(u.first);
  }
  torch::Tensor r = index_of_rows(rows);
  model::ForwardOptions fo;
  if (t.label_drop.defined()) fo.label_drop_mask = t.label_drop.index_select(0, r);
  if (t.keep.defined()) fo.drop_path_keep = t.keep.index_select(1, r);
  return MicroBatch{ids, var_row_loss(t.var, t.labels.index_select(0, r), t.x.index_select(0, r),
                                      t.targets.index_select(0, r), fo, t.label_smoothing)};
}

// Flat float64 concatenation of per-tensor gradients in the order of `set` (the engine's flat
// layout); an unused tensor contributes zeros.
inline torch::Tensor flat_of(const TrainableSet& set, const std::vector<torch::Tensor>& grads) {
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < set.size(); ++i) {
    const torch::Tensor& g = grads[static_cast<size_t>(i)];
    parts.push_back(g.defined() ? g.reshape({-1}).to(torch::kDouble)
                                : torch::zeros({set.tensor(i).numel()}, torch::kDouble));
  }
  return torch::cat(parts);
}

// One view alone: a batch-of-one forward with the row's randomness and a plain backward. Label
// dropout is applied by substituting the null class into the label (not through the model's
// mask), so the reference also checks what "dropped" means.
inline torch::Tensor view_gradient(Tiny& t, const TrainableSet& set, int64_t e, int64_t v) {
  const int64_t r = t.row(e, v);
  torch::Tensor label = t.labels.narrow(0, r, 1).clone();
  if (t.label_drop.defined() && t.label_drop[r].item<bool>()) label.fill_(t.null_class());
  model::ForwardOptions fo;
  if (t.keep.defined()) fo.drop_path_keep = t.keep.narrow(1, r, 1);
  torch::Tensor logits = t.var->forward(label, t.x.narrow(0, r, 1), fo);
  torch::Tensor loss = model::cross_entropy_loss(logits, t.targets.narrow(0, r, 1), t.label_smoothing).per_example;
  auto grads = torch::autograd::grad({loss.sum()}, set.tensors(), {}, false, false, /*allow_unused=*/true);
  return flat_of(set, grads);
}

// Example e's gradient: the mean of its k view gradients (invariant 1), float64.
inline torch::Tensor example_gradient(Tiny& t, const TrainableSet& set, int64_t e) {
  torch::Tensor g = view_gradient(t, set, e, 0);
  for (int64_t v = 1; v < t.k; ++v) g = g + view_gradient(t, set, e, v);
  return g / static_cast<double>(t.k);
}

// The clip factor, defined as in privatize.hpp: Opacus' min(1, C / (norm + 1e-6)) with C shrunk
// by the safety margin kClipSafety (so that rounding cannot lift a clipped norm above C).
inline double clip_factor(double norm, double C) { return std::min(1.0, C * (1.0 - kClipSafety) / (norm + 1e-6)); }

struct Reference {
  std::vector<torch::Tensor> grads;  // per example, float64, unclipped
  std::vector<double> norms;
  double C = 0;
  torch::Tensor clipped_sum;  // float64
};

// Per-example gradients and norms of the reference for the examples 0..E-1.
inline Reference per_example_reference(Tiny& t, const TrainableSet& set) {
  Reference ref;
  for (int64_t e = 0; e < t.E; ++e) {
    ref.grads.push_back(example_gradient(t, set, e));
    ref.norms.push_back(ref.grads.back().norm().item<double>());
  }
  return ref;
}

// The clipped sum for clipping norm C. C < 0 picks C between the middle norms, so that some
// examples are clipped and some are not (both branches of the clip factor); C = 0 picks half the
// smallest norm: every example is clipped, so the sum of several examples' gradients clipped
// together cannot pass for the sum of their clipped gradients.
inline Reference reclip(Reference ref, double C) {
  std::vector<double> s = ref.norms;
  std::sort(s.begin(), s.end());
  if (C < 0) C = 0.5 * (s[s.size() / 2 - 1] + s[s.size() / 2]);
  if (C == 0) C = 0.5 * s.front();
  ref.C = C;
  ref.clipped_sum = torch::zeros_like(ref.grads.at(0));
  for (size_t e = 0; e < ref.grads.size(); ++e) ref.clipped_sum += ref.grads[e] * clip_factor(ref.norms[e], C);
  return ref;
}

inline Reference reference(Tiny& t, const TrainableSet& set, double C = -1) {
  return reclip(per_example_reference(t, set), C);
}

// ---- layouts --------------------------------------------------------------------------------

// All views of all examples in one micro-batch, views interleaved (e0v0, e1v0, ..., e0v1, ...).
inline Layout one_batch(int64_t E, int64_t k) {
  std::vector<Unit> u;
  for (int64_t v = 0; v < k; ++v)
    for (int64_t e = 0; e < E; ++e) u.emplace_back(e, v);
  return {u};
}

// Several micro-batches, each with several examples. k = 1: examples alternate over two
// micro-batches. k > 1: over three micro-batches, even examples whole in one micro-batch, odd
// ones with their views spread over all three (so micro-batches mix whole and partial examples).
inline Layout split_batches(int64_t E, int64_t k) {
  if (k == 1) {
    Layout l(2);
    for (int64_t e = 0; e < E; ++e) l[static_cast<size_t>(e % 2)].emplace_back(e, 0);
    return l;
  }
  Layout l(3);
  for (int64_t e = 0; e < E; ++e)
    for (int64_t v = 0; v < k; ++v) {
      if (e % 2 == 0)
        l[static_cast<size_t>(e / 2 % 3)].emplace_back(e, v);
      else
        l[static_cast<size_t>((e + v) % 3)].emplace_back(e, v);
    }
  return l;
}

// The same micro-batches with their rows in reverse order and the micro-batches in reverse
// order: randomness that followed the row position instead of the (example, view) unit shows.
inline Layout reversed(Layout l) {
  std::reverse(l.begin(), l.end());
  for (auto& mb : l) std::reverse(mb.begin(), mb.end());
  return l;
}

inline int64_t distinct_examples(const std::vector<Unit>& units) {
  std::set<int64_t> s;
  for (const auto& u : units) s.insert(u.first);
  return static_cast<int64_t>(s.size());
}

// The premise of the strategy comparisons: no micro-batch holds a single example (the engine
// takes a plain backward pass for those, the same for every strategy).
inline bool every_micro_batch_has_several_examples(const Layout& l) {
  for (const auto& mb : l)
    if (distinct_examples(mb) < 2) return false;
  return true;
}

// True when some example's views lie in two micro-batches or more (the accumulator's case).
inline bool spreads_an_example(const Layout& l) {
  std::map<int64_t, std::set<size_t>> where;
  for (size_t m = 0; m < l.size(); ++m)
    for (const auto& u : l[m]) where[u.first].insert(m);
  for (const auto& kv : where)
    if (kv.second.size() > 1) return true;
  return false;
}

// ---- engine runs -----------------------------------------------------------------------------

struct Strategy {
  GradStrategy s;
  NormRule rule;
  std::string name() const {
    return s == GradStrategy::bk ? std::string("bk/") + norm_rule_name(rule) : grad_strategy_name(s);
  }
};
inline const std::vector<Strategy>& all_strategies() {
  static const std::vector<Strategy> v{{GradStrategy::reference, NormRule::cost},
                                       {GradStrategy::instantiate, NormRule::cost},
                                       {GradStrategy::bk, NormRule::cost},
                                       {GradStrategy::bk, NormRule::ghost},
                                       {GradStrategy::bk, NormRule::instantiate}};
  return v;
}

struct EngineRun {
  torch::Tensor sum;  // this rank's clipped sum, before noise
  std::map<int64_t, double> norms;
  StepStats stats;
};

// One step's feeding for the lot 0..E-1 (no finish_step: the clipped sum before noise).
inline EngineRun run_engine(Tiny& t, const Selector& sel, const Strategy& st, double C, const Layout& layout) {
  DpEngine eng(*t.var, TrainableSet::from_module(*t.var, sel), EngineOptions{st.s, st.rule, C, t.k});
  std::vector<int64_t> lot;
  for (int64_t e = 0; e < t.E; ++e) lot.push_back(e);
  eng.begin_step(lot);
  for (const auto& units : layout) eng.feed(micro_batch(t, units));
  return EngineRun{eng.local_clipped_sum().clone(), eng.example_norms(), eng.stats()};
}

// ||got - want|| / ||want|| in float64.
inline double rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  const torch::Tensor w = want.to(torch::kDouble);
  return (got.to(torch::kDouble) - w).norm().item<double>() / std::max(w.norm().item<double>(), 1e-300);
}

// The worst relative error of a run against the reference, and where it is: every example's
// norm, the clipped sum, and the clipped sum of each trainable tensor with a non-zero reference
// (a small tensor's error would drown in the flat norm). Errors under a looser tolerance
// (tensor_tolerance, flat_tolerance) are scaled to kEngineTol units: one bound, kEngineTol.
struct EngineError {
  double err = 0;
  std::string where;
};

// Per-tensor tolerance. The attention scale scale_mul_1H11 multiplies the query-key logits
// before the softmax; its gradient is sum_ij dS_ij (q_i . k_j) where each softmax row of dS sums
// to zero, a sum that cancels by orders of magnitude, so float32 rounding of its terms leaves a
// relative error ~1e-5 in the result (measured 1.6e-5 between batch-of-one and micro-batch
// summation orders). 1e-4 still exposes any real bug (1e-2 or more).
inline double tensor_tolerance(const std::string& name) {
  return name.find("scale_mul_1H11") != std::string::npos ? 1e-4 : kEngineTol;
}

// The tolerance of a flat vector (a per-example gradient, a clipped sum): each tensor's
// tolerance weighted by its share of the vector, sqrt(sum_i (tol_i |x_i|)^2) / |x| (kEngineTol
// when every tensor has kEngineTol; 1e-4 for a set that is all scale_mul_1H11).
inline double flat_tolerance(const TrainableSet& set, const torch::Tensor& x) {
  double num = 0;
  for (int64_t i = 0; i < set.size(); ++i) {
    const double part = tensor_tolerance(set.name(i)) * set.slice(x, i).norm().item<double>();
    num += part * part;
  }
  const double n = x.norm().item<double>();
  return n > 0 ? std::max(kEngineTol, std::sqrt(num) / n) : kEngineTol;
}

inline EngineError worst_error(const EngineRun& run, const Reference& ref, const TrainableSet& set) {
  EngineError w;
  auto update = [&](double err, double tol, const std::string& where) {
    const double scaled = err * kEngineTol / tol;
    if (scaled > w.err) w = EngineError{scaled, where};
  };
  for (const auto& kv : run.norms) {
    const size_t e = static_cast<size_t>(kv.first);
    const double want = ref.norms.at(e);
    update(std::abs(kv.second - want) / want, flat_tolerance(set, ref.grads.at(e)),
           "norm of example " + std::to_string(kv.first));
  }
  update(rel_err(run.sum, ref.clipped_sum), flat_tolerance(set, ref.clipped_sum), "clipped sum");
  for (int64_t i = 0; i < set.size(); ++i) {
    torch::Tensor want = set.slice(ref.clipped_sum, i);
    if (want.norm().item<double>() > 0)
      update(rel_err(set.slice(run.sum, i), want), tensor_tolerance(set.name(i)), "clipped sum of " + set.name(i));
  }
  return w;
}

// A fixed run secret: the tests' noise is reproducible (the mechanism's coins of a real run come
// from dp.secret_file or the OS; see train/run_secret.hpp).
inline const RunSecret& test_secret() {
  static const RunSecret s =
      RunSecret::from_hex("00112233445566778899aabbccddeeff0123456789abcdef0f1e2d3c4b5a6978", "test secret");
  return s;
}

// NoiseSpec by field name: sigma, C and the expected lot size q*N, the noise keyed by
// test_secret() in every engine of a test.
inline NoiseSpec noise_spec(double sigma, double C, double expected_lot_size) {
  NoiseSpec s;
  s.noise_multiplier = sigma;
  s.max_grad_norm = C;
  s.expected_lot_size = expected_lot_size;
  s.secret = &test_secret();
  return s;
}

// LoRA on every linear except word_embed, with non-zero B (B = 0 at init would make every B
// gradient trivially equal): what the "lora" adaptation trains, with is_lora_set.
inline void enable_lora_everywhere(Tiny& t) {
  at::Generator gen = at::detail::createCPUGenerator(5);
  for (auto& item : t.var->named_modules("", false))
    if (auto* lin = dynamic_cast<model::LinearImpl*>(item.value().get()); lin && item.key() != "word_embed")
      lin->enable_lora(2, 4.0, 0.0, "kaiming", gen);
  torch::NoGradGuard no_grad;
  for (auto& p : t.var->named_parameters(true))
    if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.1, gen);
}

// The LoRA factors plus the class embedding.
inline bool is_lora_set(const std::string& n) {
  return n.find(".lora_") != std::string::npos || n == "class_emb.weight";
}

// Runs f and expects an exception of exactly type E (not a subclass: a CollectiveError ends the
// job on every rank, a plain Error on one rank calls MPI_Abort) whose message contains `needle`.
template <class E, class F>
void expect_engine_error(F&& f, const std::string& needle, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << what << ": no exception, expected one containing \"" << needle << "\"";
  } catch (const std::exception& e) {
    EXPECT_TRUE(typeid(e) == typeid(E)) << what << ": exception of type " << typeid(e).name() << " instead of "
                                        << typeid(E).name() << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << what << ": message \"" << e.what() << "\" lacks \"" << needle << "\"";
  }
}

}  // namespace vardp::dp::enginetest
