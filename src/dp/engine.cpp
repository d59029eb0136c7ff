// The DP-SGD step (privacy argument: invariants 1-3 - one clipped mean-over-views gradient per
// lot example, noise once on rank 0, division by q*N; see engine.hpp).
#include "vardp/dp/engine.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "vardp/util/error.hpp"

namespace vardp::dp {

DpEngine::DpEngine(torch::nn::Module& model, TrainableSet set, EngineOptions options)
    : opt_(options), grads_(make_per_example_gradients(options.strategy, model, std::move(set), options.norm_rule)) {
  VARDP_CHECK(opt_.max_grad_norm > 0 && std::isfinite(opt_.max_grad_norm), "max_grad_norm must be positive, got ",
              opt_.max_grad_norm);
  VARDP_CHECK(opt_.augmult >= 1, "augmult must be >= 1, got ", opt_.augmult);
}

void DpEngine::begin_step(std::vector<int64_t> lot) {
  lot_ = std::move(lot);
  lot_pos_.clear();
  for (size_t i = 0; i < lot_.size(); ++i) {
    const bool fresh = lot_pos_.emplace(lot_[i], static_cast<int64_t>(i)).second;
    VARDP_CHECK(fresh, "example ", lot_[i], " appears twice in the lot");
  }
  const TrainableSet& set = grads_->trainable();
  acc_.reset(opt_.augmult, set.numel(), set.options());
  sum_ = torch::zeros({set.numel()}, set.options());
  norms_.clear();
  dropped_.clear();
  stats_ = StepStats{};
  stats_.lot_size = static_cast<int64_t>(lot_.size());
  in_step_ = true;
}

void DpEngine::record_norm(int64_t example, double norm) {
  const bool fresh = norms_.emplace(example, norm).second;
  VARDP_CHECK(fresh, "example ", example, " was clipped twice in one step");
}

void DpEngine::clip_and_add(int64_t example, const torch::Tensor& flat) {
  torch::Tensor norm = flat.mul(flat).sum(torch::kFloat64).sqrt().reshape({1});
  torch::Tensor f = clip_factors(norm, opt_.max_grad_norm);
  sum_.add_(flat * f.to(flat.scalar_type()));
  record_norm(example, norm.item<double>());
}

void DpEngine::feed(const MicroBatch& mb) {
  VARDP_CHECK(in_step_, "feed() outside a step: call begin_step() first");
  if (mb.example_ids.empty()) return;
  const int64_t k = opt_.augmult;
  RowGroups groups(mb.example_ids);
  std::vector<bool> whole(static_cast<size_t>(groups.num_groups()));
  std::map<int64_t, int64_t> rows_of_example;
  for (int64_t e = 0; e < groups.num_groups(); ++e) {
    const int64_t id = groups.example(e);
    VARDP_CHECK(lot_pos_.count(id), "example ", id, " is not in the lot of this step");
    VARDP_CHECK(!norms_.count(id) && !dropped_.count(id), "example ", id, " already has all ", k,
                " views in this step");
    const int64_t prior = acc_.seen(id), n = static_cast<int64_t>(groups.rows(e).size());
    VARDP_CHECK(prior + n <= k, "example ", id, " would get ", prior + n, " views, augmult is ", k);
    whole[static_cast<size_t>(e)] = prior == 0 && n == k;
    rows_of_example[id] = n;
  }
  ++stats_.micro_batches;
  stats_.rows += groups.num_rows();
  const double row_weight = 1.0 / static_cast<double>(k);  // an example's gradient is the MEAN over views

  if (groups.num_groups() == 1) {
    // One example x many views: the plain gradient of the weighted loss is the example's (partial)
    // gradient; no per-example machinery is needed.
    const int64_t id = groups.example(0);
    torch::Tensor flat = grads_->flat_gradient(mb, groups.rows(0), row_weight);
    if (whole[0])
      clip_and_add(id, flat);
    else if (acc_.add(id, flat, rows_of_example[id]))
      clip_and_add(id, acc_.take(id));
    return;
  }

  MicroBatchGrads res = grads_->run(mb, groups, whole, row_weight, opt_.max_grad_norm);
  sum_.add_(res.clipped_sum);
  torch::Tensor norms = res.whole_norms.to(torch::kCPU).contiguous();
  for (size_t i = 0; i < res.whole_ids.size(); ++i)
    record_norm(res.whole_ids[i], norms[static_cast<int64_t>(i)].item<double>());
  stats_.ghost_norm_layers += res.ghost_norm_layers;
  stats_.instantiated_norm_layers += res.instantiated_norm_layers;
  for (size_t i = 0; i < res.partial_ids.size(); ++i) {
    const int64_t id = res.partial_ids[i];
    if (acc_.add(id, res.partial_grads[static_cast<int64_t>(i)], rows_of_example[id]))
      clip_and_add(id, acc_.take(id));
  }
}

void DpEngine::reduce_view_group(dist::TensorComm& group) {
  VARDP_CHECK(in_step_, "reduce_view_group() outside a step");
  // The union of the group's pending examples, agreed through the lot that every rank knows.
  torch::Tensor mask = torch::zeros({static_cast<int64_t>(lot_.size())}, torch::kLong);
  for (int64_t id : acc_.pending()) mask[lot_pos_.at(id)] = 1;
  group.all_reduce(mask, dist::ReduceOp::max);
  std::vector<int64_t> examples;
  for (size_t i = 0; i < lot_.size(); ++i)
    if (mask[static_cast<int64_t>(i)].item<int64_t>() != 0) examples.push_back(lot_[i]);
  std::vector<int64_t> counts = acc_.reduce_over(group, examples);
  // Every rank of the group sees the same counts, so this error is collective.
  for (size_t i = 0; i < examples.size(); ++i)
    if (counts[i] != opt_.augmult)
      throw CollectiveError(str("example ", examples[i], " has ", counts[i], " views over its view group, augmult is ",
                                opt_.augmult),
                            "DpEngine::reduce_view_group");
  const bool clips = group.host().rank() == 0;
  for (int64_t id : examples) {
    torch::Tensor g = acc_.take(id);
    if (clips)
      clip_and_add(id, g);
    else
      dropped_.insert(id);  // clipped once, by the group's rank 0
  }
}

torch::Tensor DpEngine::finish_step(dist::TensorComm& comm, const NoiseSpec& spec, int64_t step, bool write_grads) {
  VARDP_CHECK(in_step_, "finish_step() outside a step");
  // The noise is calibrated to the sensitivity C of the clipped sum: both must be the same C.
  VARDP_CHECK(std::abs(spec.max_grad_norm - opt_.max_grad_norm) <= 1e-12 * opt_.max_grad_norm,
              "noise calibrated for max_grad_norm ", spec.max_grad_norm, " but gradients clipped to ",
              opt_.max_grad_norm);
  dist::Comm& host = comm.host();
  const auto pending = acc_.pending();
  if (host.any_flag(!pending.empty())) {
    in_step_ = false;
    throw CollectiveError(str("step ", step, ": ", pending.empty() ? "another rank holds" : "this rank holds",
                              " examples with fewer than ", opt_.augmult, " views",
                              pending.empty() ? std::string() : str(" (first: ", pending.front(), ")")),
                          "DpEngine::finish_step");
  }
  double local_sum = 0, local_max = 0;
  std::vector<double> norms;
  norms.reserve(norms_.size());
  for (const auto& kv : norms_) {
    local_sum += kv.second;
    local_max = std::max(local_max, kv.second);
    norms.push_back(kv.second);
  }
  // Clipped = scaled down by the engine's own clip rule (one call for the step, not a copy of it).
  const int64_t local_clipped =
      norms.empty() ? 0
                    : clip_factors(torch::tensor(norms, torch::kFloat64), opt_.max_grad_norm).lt(1.0).sum().item<int64_t>();
  const int64_t examples = host.all_reduce(static_cast<int64_t>(norms_.size()), dist::ReduceOp::sum);
  const double sum_norms = host.all_reduce(local_sum, dist::ReduceOp::sum);
  const double max_norm = host.all_reduce(local_max, dist::ReduceOp::max);
  const int64_t clipped = host.all_reduce(local_clipped, dist::ReduceOp::sum);
  if (examples != static_cast<int64_t>(lot_.size())) {
    in_step_ = false;
    throw CollectiveError(str("step ", step, ": ", examples, " examples were clipped but the lot has ", lot_.size(),
                              " (every lot example must be fed exactly once, with all its views)"),
                          "DpEngine::finish_step");
  }
  stats_.step = step;
  stats_.examples = examples;
  stats_.mean_norm = examples ? sum_norms / static_cast<double>(examples) : 0.0;
  stats_.max_norm = max_norm;
  stats_.clip_fraction = examples ? static_cast<double>(clipped) / static_cast<double>(examples) : 0.0;

  torch::Tensor update = sum_.clone();
  privatize_in_place(update, spec, step, comm);
  if (write_grads) grads_->trainable().set_grads(update);
  in_step_ = false;
  return update;
}

std::function<torch::Tensor(const torch::Tensor&)> var_row_loss(model::VAR var, torch::Tensor labels,
                                                                 torch::Tensor x_BLCv, torch::Tensor targets,
                                                                 model::ForwardOptions opt, double label_smoothing) {
  VARDP_CHECK(opt.cond_drop_rate == 0,
              "var_row_loss: label dropout must come as an explicit per-row label_drop_mask, not a rate");
  // Invariant 6 for drop-path too: drawn inside the forward, its masks would differ between the
  // batched forward, the per-example ones and another micro-batch split.
  bool drops = false;
  for (double r : var->drop_path_rates()) drops = drops || r > 0;
  VARDP_CHECK(!(var->is_training() && drops) || opt.drop_path_keep.defined(),
              "var_row_loss: drop-path in training needs an explicit per-row drop_path_keep, not a rate");
  const int64_t R = labels.size(0);
  VARDP_CHECK(x_BLCv.size(0) == R && targets.size(0) == R, "var_row_loss: labels (", R, "), inputs ",
              x_BLCv.sizes(), " and targets ", targets.sizes(), " disagree on the rows");
  return [=](const torch::Tensor& rows_in) mutable {
    torch::Tensor rows = rows_in.to(labels.device());
    const bool all = rows.size(0) == R && torch::equal(rows, torch::arange(R, rows.options()));
    auto pick = [&](const torch::Tensor& t, int64_t dim) { return all ? t : t.index_select(dim, rows.to(t.device())); };
    model::ForwardOptions o;
    if (opt.label_drop_mask.defined()) o.label_drop_mask = pick(opt.label_drop_mask, 0);
    if (opt.drop_path_keep.defined()) o.drop_path_keep = pick(opt.drop_path_keep, 1);
    o.generator = opt.generator;
    torch::Tensor logits = var->forward(pick(labels, 0), pick(x_BLCv, 0), o);
    return model::cross_entropy_loss(logits, pick(targets, 0), label_smoothing).per_example;
  };
}

}  // namespace vardp::dp
