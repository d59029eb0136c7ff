// FLOPs of training steps: forward/backward of every example-view, DP-SGD extras from the
// micro-batch layout, the optimizer (see training_flops.hpp for what each part counts).
#include "vardp/profile/training_flops.hpp"

#include <map>
#include <set>

#include "vardp/util/error.hpp"

namespace vardp::profile {

int64_t MicroBatchShape::rows() const {
  int64_t n = 0;
  for (int64_t v : views) n += v;
  return n;
}

int64_t StepShape::rows() const {
  int64_t n = 0;
  for (const auto& mb : micro_batches) n += mb.rows();
  return n;
}

StepShape shape_from_units(const std::vector<std::vector<int64_t>>& examples_per_rank, int64_t micro_batch,
                           int64_t views) {
  VARDP_CHECK(micro_batch >= 1, "micro_batch must be >= 1, got ", micro_batch);
  VARDP_CHECK(views >= 1, "views must be >= 1, got ", views);
  StepShape s;
  s.views = views;
  s.ranks = static_cast<int64_t>(examples_per_rank.size());
  std::set<int64_t> examples;
  for (const auto& units : examples_per_rank) {
    for (size_t lo = 0; lo < units.size(); lo += static_cast<size_t>(micro_batch)) {
      const size_t hi = std::min(units.size(), lo + static_cast<size_t>(micro_batch));
      MicroBatchShape mb;
      std::map<int64_t, size_t> group;
      for (size_t u = lo; u < hi; ++u) {
        auto it = group.find(units[u]);
        if (it == group.end()) {
          it = group.emplace(units[u], mb.views.size()).first;
          mb.views.push_back(0);
        }
        ++mb.views[it->second];
        examples.insert(units[u]);
      }
      s.micro_batches.push_back(std::move(mb));
    }
  }
  s.examples = static_cast<int64_t>(examples.size());
  return s;
}

StepFlops& StepFlops::operator+=(const StepFlops& o) {
  rows += o.rows;
  examples += o.examples;
  tokenize += o.tokenize;
  forward += o.forward;
  backward += o.backward;
  dp_extra += o.dp_extra;
  dp_extra_matmul += o.dp_extra_matmul;
  optimizer += o.optimizer;
  return *this;
}

StepFlops StepFlops::scaled(double factor) const {
  StepFlops s = *this;
  s.rows *= factor;
  s.examples *= factor;
  s.tokenize *= factor;
  s.forward *= factor;
  s.backward *= factor;
  s.dp_extra *= factor;
  s.dp_extra_matmul *= factor;
  s.optimizer *= factor;
  for (auto& m : s.modules) {
    m.dp_extra *= factor;
    m.optimizer *= factor;
  }
  return s;
}

namespace {

constexpr const char* kSmallParams = "params.small";  // positions, embeddings, q/v biases, scales
constexpr const char* kClip = "dp.clip";
constexpr const char* kNoise = "dp.noise";
constexpr const char* kOptimizer = "optimizer";

ModuleFlops& row(std::vector<ModuleFlops>& rows, const std::string& name) {
  for (auto& r : rows)
    if (r.name == name) return r;
  throw Error("no FLOP row '" + name + "'", "profile");
}

}  // namespace

TrainingFlopModel::TrainingFlopModel(VarTrainingGraph graph, const TokenizerFlops& tokenizer, bool token_cache,
                                     const config::TrainConfig& optimizer, std::optional<DpCostOptions> dp)
    : graph_(std::move(graph)), dp_(dp) {
  auto tok = [&](const char* name, double flops) {
    ModuleFlops m{name, 1, true};
    m.forward = flops;
    per_view_.push_back(m);
  };
  if (!token_cache) {
    tok("vqvae.encoder", tokenizer.encoder);
    tok("vqvae.quantize", tokenizer.quantize);
  }
  tok("vqvae.var_input", tokenizer.var_input);
  for (auto& m : module_flops(graph_)) per_view_.push_back(std::move(m));
  if (dp_) {
    int64_t small = 0;
    for (const auto& t : graph_.trained) small += t.linear ? 0 : 1;
    per_view_.push_back(ModuleFlops{kSmallParams, small});
    per_view_.push_back(ModuleFlops{kClip, 1});
    per_view_.push_back(ModuleFlops{kNoise, 1});
  }
  per_view_.push_back(ModuleFlops{kOptimizer, 1});

  const bool adamw = optimizer.optimizer == "adamw";
  VARDP_CHECK(adamw || optimizer.optimizer == "sgd", "unknown optimizer '", optimizer.optimizer, "'");
  for (const auto& t : graph_.trained) {
    const bool wd = t.decayed && optimizer.weight_decay != 0.0;
    const double per_element =
        adamw ? 13.0 + (wd ? 1.0 : 0.0) : 2.0 + (wd ? 2.0 : 0.0) + (optimizer.momentum != 0.0 ? 2.0 : 0.0);
    optimizer_per_rank_ += per_element * static_cast<double>(t.numel);
  }
}

double TrainingFlopModel::tokenize_per_view() const {
  double s = 0;
  for (const auto& m : per_view_) s += m.tokenizer ? m.forward : 0.0;
  return s;
}

double TrainingFlopModel::forward_per_view() const {
  double s = 0;
  for (const auto& m : per_view_) s += m.tokenizer ? 0.0 : m.forward;
  return s;
}

double TrainingFlopModel::backward_per_view() const {
  double s = 0;
  for (const auto& m : per_view_) s += m.backward();
  return s;
}

StepFlops TrainingFlopModel::step(const StepShape& shape) const {
  StepFlops f;
  f.modules = per_view_;
  f.rows = static_cast<double>(shape.rows());
  f.examples = static_cast<double>(shape.examples);
  f.tokenize = tokenize_per_view() * f.rows;
  f.forward = forward_per_view() * f.rows;
  f.backward = backward_per_view() * f.rows;
  f.optimizer = optimizer_per_rank_ * static_cast<double>(shape.ranks);
  row(f.modules, kOptimizer).optimizer = f.optimizer;
  if (dp_) add_dp_extras(shape, f);
  return f;
}

void TrainingFlopModel::add_dp_extras(const StepShape& shape, StepFlops& f) const {
  const auto P = static_cast<double>(graph_.trained_numel());
  const int64_t k = shape.views;
  ModuleFlops& clip = row(f.modules, kClip);
  ModuleFlops& small = row(f.modules, kSmallParams);
  std::vector<ModuleFlops*> layer_row;
  for (const auto& s : graph_.linears) layer_row.push_back(&row(f.modules, s.module));
  double matmul = 0;
  int64_t whole_examples = 0;

  for (const auto& mb : shape.micro_batches) {
    const auto E = static_cast<int64_t>(mb.views.size());
    if (E == 0) continue;
    int64_t whole = 0;
    for (int64_t v : mb.views) whole += v == k ? 1 : 0;
    whole_examples += whole;
    const auto R = static_cast<double>(mb.rows());
    const auto partial = static_cast<double>(E - whole);
    if (E == 1) {
      // One example: a plain backward gives its (partial) gradient; clipped here when whole.
      clip.dp_extra += whole ? 4 * P : P;
      continue;
    }
    clip.dp_extra += P + P * partial;  // the clipped sum added to the step's; partial accumulations
    if (dp_->strategy != dp::GradStrategy::bk) {
      clip.dp_extra += 4 * P * static_cast<double>(whole);  // norms of the flat gradients, clip-weighted sum
      continue;
    }
    if (whole == 0) continue;  // all instantiated: the per-example weight gradients are the weight gradient
    const auto W = static_cast<double>(whole);
    for (size_t i = 0; i < graph_.linears.size(); ++i) {
      const LinearSite& s = graph_.linears[i];
      ModuleFlops& r = *layer_row[i];
      const auto in = static_cast<double>(s.in), out = static_cast<double>(s.out);
      const auto T = static_cast<double>(s.tokens);
      if (s.weight_trained) {
        const int64_t tokens = k * s.tokens;  // an example's views are one sequence for its norm
        const auto t = static_cast<double>(tokens);
        double mm = 0, ew = 0;
        if (dp::use_ghost_norm(dp_->norm_rule, tokens, s.in, s.out)) {
          mm = 2 * t * t * (in + out);  // Gram matrices A A^T and G G^T
          ew = 2 * t * t;               // their elementwise product, summed
        } else {
          mm = 2 * t * in * out;  // the example's weight gradient G^T A
          ew = 2 * in * out;      // its squared norm
        }
        double extra_mm = W * mm;
        for (int64_t v : mb.views)  // partial examples: instantiated for the accumulator
          if (v != k) extra_mm += 2 * static_cast<double>(v) * T * in * out;
        r.dp_extra += extra_mm + W * ew + R * T * out;  // + the output gradients scaled by clip factors
        matmul += extra_mm;
      }
      if (s.bias_trained) r.dp_extra += W * 2 * out + 2 * R * out;  // norms, clip-weighted sum over rows
    }
    for (const auto& t : graph_.trained)
      if (!t.linear) small.dp_extra += W * 2 * static_cast<double>(t.numel) + 2 * R * static_cast<double>(t.numel);
  }
  // Examples never whole in one micro-batch: clipped once their k views are accumulated (on this
  // rank, or by the view group's rank 0 after its reduction).
  clip.dp_extra += 4 * P * static_cast<double>(shape.examples - whole_examples);
  ModuleFlops& noise = row(f.modules, kNoise);
  noise.dp_extra = 2 * P + P * static_cast<double>(shape.ranks);
  f.dp_extra = 0;
  for (const auto& m : f.modules) f.dp_extra += m.dp_extra;
  f.dp_extra_matmul = matmul;
}

}  // namespace vardp::profile
