// Per-example gradients: reference, instantiation and book-keeping strategies (privacy argument:
// invariant 1 - exact per-example gradients of the mean over an example's views, clipped
// jointly over all trainable tensors; see per_example.hpp).
#include "vardp/dp/per_example.hpp"

#include <map>
#include <set>

#include "vardp/dp/privatize.hpp"
#include "vardp/model/grad_hooks.hpp"
#include "vardp/model/linear.hpp"
#include "vardp/util/error.hpp"

namespace vardp::dp {

const char* grad_strategy_name(GradStrategy s) {
  switch (s) {
    case GradStrategy::reference: return "reference";
    case GradStrategy::instantiate: return "instantiate";
    case GradStrategy::bk: return "bk";
  }
  return "?";
}

GradStrategy parse_grad_strategy(const std::string& name) {
  if (name == "reference") return GradStrategy::reference;
  if (name == "instantiate" || name == "opacus") return GradStrategy::instantiate;
  if (name == "bk" || name == "ghost") return GradStrategy::bk;
  throw Error(str("unknown per-example gradient strategy '", name, "' (reference, instantiate, bk)"));
}

// ---- TrainableSet ------------------------------------------------------------------------------

TrainableSet TrainableSet::from_module(torch::nn::Module& root,
                                       const std::function<bool(const std::string&)>& select) {
  TrainableSet s;
  for (const auto& item : root.named_parameters(/*recurse=*/true)) {
    if (select && !select(item.key())) continue;
    s.names_.push_back(item.key());
    s.params_.push_back(item.value());
    s.offsets_.push_back(s.total_);
    s.total_ += item.value().numel();
  }
  if (s.params_.empty()) throw Error("no parameter of the model is selected for training", "TrainableSet");
  // Tied weights (one tensor under two names) would be counted twice in every flat gradient and
  // norm: refuse them (invariant 1).
  std::map<const void*, std::string> seen;
  for (size_t i = 0; i < s.params_.size(); ++i) {
    auto [it, fresh] = seen.emplace(s.params_[i].unsafeGetTensorImpl(), s.names_[i]);
    VARDP_CHECK(fresh, "TrainableSet: '", s.names_[i], "' and '", it->second,
                "' are one tensor (tied weights); train it under one name");
  }
  for (const auto& p : s.params_)
    VARDP_CHECK(p.scalar_type() == s.params_[0].scalar_type() && p.device() == s.params_[0].device(),
                "TrainableSet: all trainable tensors must share one dtype and device");
  return s;
}

int64_t TrainableSet::index_of_tensor(const torch::Tensor& t) const {
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i].unsafeGetTensorImpl() == t.unsafeGetTensorImpl()) return static_cast<int64_t>(i);
  return -1;
}

int64_t TrainableSet::index_of(const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return static_cast<int64_t>(i);
  return -1;
}

torch::TensorOptions TrainableSet::options() const {
  VARDP_CHECK(!params_.empty(), "empty TrainableSet");
  return params_[0].options().requires_grad(false);
}

torch::Tensor TrainableSet::slice(const torch::Tensor& flat, int64_t i) const {
  const torch::Tensor& p = tensor(i);
  VARDP_CHECK(flat.dim() == 1 && flat.size(0) == total_, "flat vector ", flat.sizes(), " for ", total_,
              " trainable elements");
  return flat.narrow(0, offset(i), p.numel()).view(p.sizes());
}

torch::Tensor TrainableSet::flatten(const std::vector<torch::Tensor>& grads) const {
  VARDP_CHECK(grads.size() == params_.size(), "flatten: ", grads.size(), " gradients for ", params_.size(),
              " tensors");
  torch::Tensor flat = torch::zeros({total_}, options());
  for (size_t i = 0; i < grads.size(); ++i)
    if (grads[i].defined()) flat.narrow(0, offsets_[i], params_[i].numel()).copy_(grads[i].reshape({-1}));
  return flat;
}

void TrainableSet::set_grads(const torch::Tensor& flat) const {
  for (int64_t i = 0; i < size(); ++i) {
    torch::Tensor p = params_[static_cast<size_t>(i)];
    p.mutable_grad() = slice(flat, i).detach().clone();
  }
}

bool is_ada_lin(const std::string& name) { return name.find("ada_lin.") != std::string::npos; }

// ---- common ---------------------------------------------------------------------------------

namespace {

void check_trainable(const TrainableSet& set) {
  for (int64_t i = 0; i < set.size(); ++i)
    VARDP_CHECK(set.tensor(i).requires_grad(), "trainable tensor '", set.name(i), "' does not require grad");
}

torch::Tensor run_loss(const MicroBatch& mb, const torch::Tensor& rows) {
  VARDP_CHECK(mb.loss, "micro-batch without a loss function");
  torch::Tensor losses = mb.loss(rows);
  VARDP_CHECK(losses.defined() && losses.dim() == 1 && losses.size(0) == rows.size(0),
              "the loss function must return one loss per row (", rows.size(0), "), got ",
              losses.defined() ? losses.sizes() : torch::IntArrayRef{});
  return losses;
}

// Sum over the whole groups of their clipped gradients, rows of `per_example` (E_w, P).
void clip_rows(const torch::Tensor& per_example, double max_grad_norm, MicroBatchGrads& out) {
  out.whole_norms = per_example.mul(per_example).sum(1, false, torch::kFloat64).sqrt();
  torch::Tensor f = clip_factors(out.whole_norms, max_grad_norm).to(per_example.scalar_type());
  out.clipped_sum = torch::mv(per_example.t(), f);
}

// ---- reference: one forward and backward per example -----------------------------------------

class ReferenceGradients : public PerExampleGradients {
 public:
  using PerExampleGradients::PerExampleGradients;
  GradStrategy strategy() const override { return GradStrategy::reference; }

  MicroBatchGrads run(const MicroBatch& mb, const RowGroups& groups, const std::vector<bool>& whole,
                      double row_weight, double max_grad_norm) override {
    MicroBatchGrads out;
    std::vector<torch::Tensor> whole_grads, partial_grads;
    for (int64_t e = 0; e < groups.num_groups(); ++e) {
      torch::Tensor flat = flat_gradient(mb, groups.rows(e), row_weight);
      if (whole[static_cast<size_t>(e)]) {
        out.whole_ids.push_back(groups.example(e));
        whole_grads.push_back(flat);
      } else {
        out.partial_ids.push_back(groups.example(e));
        partial_grads.push_back(flat);
      }
    }
    if (!whole_grads.empty()) {
      clip_rows(torch::stack(whole_grads), max_grad_norm, out);
    } else {
      out.whole_norms = torch::zeros({0}, torch::kFloat64);
      out.clipped_sum = torch::zeros({set_.numel()}, set_.options());
    }
    if (!partial_grads.empty()) out.partial_grads = torch::stack(partial_grads);
    return out;
  }
};

// ---- hooked strategies: what one forward shows the engine --------------------------------------

// Records, during the forward of a micro-batch of R rows, every linear layer with a trainable
// weight or bias (inputs and outputs) and replaces every trainable small parameter by a
// per-row replica.
class CaptureObserver : public model::GradObserver {
 public:
  struct LinearUse {
    int64_t weight = -1, bias = -1;  // indices in the TrainableSet
    std::vector<torch::Tensor> inputs, outputs;
  };
  struct ParamUse {
    int64_t index = -1;
    std::vector<torch::Tensor> replicas;
  };

  CaptureObserver(const TrainableSet& set, int64_t rows) : set_(set), rows_(rows) {}

  void on_linear(const model::LinearImpl& layer, const at::Tensor& input, const at::Tensor& output) override {
    const int64_t w = set_.index_of(layer.key("weight"));
    const int64_t b = layer.has_bias() ? set_.index_of(layer.key("bias")) : -1;
    // Invariant 1: a trainable tensor that reaches this layer under another name (a weight tied
    // to another layer's) would get this layer's share of its gradient nowhere, or twice.
    for (const auto& [tensor, index] : {std::make_pair(&layer.weight, w), std::make_pair(&layer.bias, b)}) {
      const int64_t by_identity = tensor->defined() ? set_.index_of_tensor(*tensor) : -1;
      VARDP_CHECK(by_identity == index, "linear layer '", layer.path(), "' uses the trainable tensor '",
                  by_identity >= 0 ? set_.name(by_identity) : set_.name(index),
                  "' under another name (tied weights); its per-example norm would be wrong: untie it or use "
                  "the reference strategy");
    }
    if (w < 0 && b < 0) return;
    VARDP_CHECK(input.dim() >= 2 && input.size(0) == rows_, "linear layer '", layer.path(), "' saw input ",
                input.sizes(), " in a micro-batch of ", rows_, " rows: per-example gradients need the rows first");
    auto it = linear_index_.find(&layer);
    if (it == linear_index_.end()) {
      it = linear_index_.emplace(&layer, linears_.size()).first;
      linears_.push_back(LinearUse{w, b, {}, {}});
    }
    linears_[it->second].inputs.push_back(input.detach());
    linears_[it->second].outputs.push_back(output);
  }

  at::Tensor on_param(const std::string& name, const at::Tensor& param, int64_t batch) override {
    const int64_t i = set_.index_of(name);
    if (i < 0) return param;
    VARDP_CHECK(batch == rows_, "parameter '", name, "' used for a batch of ", batch, " in a micro-batch of ",
                rows_, " rows");
    std::vector<int64_t> shape{batch};
    shape.insert(shape.end(), param.sizes().begin(), param.sizes().end());
    // A broadcast view: no copy of the parameter per row; its gradient is dense per row.
    torch::Tensor replica = param.detach().unsqueeze(0).expand(shape).requires_grad_(true);
    auto it = param_index_.find(i);
    if (it == param_index_.end()) {
      it = param_index_.emplace(i, params_.size()).first;
      params_.push_back(ParamUse{i, {}});
    }
    params_[it->second].replicas.push_back(replica);
    return replica;
  }

  std::vector<LinearUse>& linears() { return linears_; }
  std::vector<ParamUse>& params() { return params_; }

 private:
  const TrainableSet& set_;
  int64_t rows_;
  std::vector<LinearUse> linears_;
  std::map<const model::LinearImpl*, size_t> linear_index_;
  std::vector<ParamUse> params_;
  std::map<int64_t, size_t> param_index_;
};

// One linear layer after the backward pass: inputs and output gradients of every row, the
// layer's uses concatenated along the token axis ((R, T, in), (R, T, out)).
struct LinearGrads {
  int64_t weight = -1, bias = -1;
  torch::Tensor a, g;
  torch::Tensor bias_rows;  // (R, out): per-row bias gradients
};
struct ParamGrads {
  int64_t index = -1;
  torch::Tensor rows;  // (R, *shape)
};

torch::Tensor as_rows_tokens(const torch::Tensor& t, int64_t rows, const torch::ScalarType dtype) {
  torch::Tensor x = t.dim() == 2 ? t.unsqueeze(1) : t.reshape({rows, -1, t.size(-1)});
  return x.to(dtype);
}

class HookedGradients : public PerExampleGradients {
 public:
  HookedGradients(torch::nn::Module& model, TrainableSet set, GradStrategy strategy, NormRule rule)
      : PerExampleGradients(model, std::move(set)), strategy_(strategy), rule_(rule) {}
  GradStrategy strategy() const override { return strategy_; }

  MicroBatchGrads run(const MicroBatch& mb, const RowGroups& groups, const std::vector<bool>& whole,
                      double row_weight, double max_grad_norm) override {
    check_trainable(set_);
    const int64_t R = groups.num_rows();
    const torch::Device device = set_.options().device();
    std::vector<LinearGrads> linears;
    std::vector<ParamGrads> params;
    backward(mb, R, row_weight, device, linears, params);

    std::vector<int64_t> W, Pp, all;
    for (int64_t e = 0; e < groups.num_groups(); ++e) {
      (whole[static_cast<size_t>(e)] ? W : Pp).push_back(e);
      all.push_back(e);
    }
    MicroBatchGrads out;
    for (int64_t e : W) out.whole_ids.push_back(groups.example(e));
    for (int64_t e : Pp) out.partial_ids.push_back(groups.example(e));

    if (strategy_ == GradStrategy::instantiate) {
      // Opacus: every example's gradient materialised, then norms, clip factors, sum.
      torch::Tensor M = instantiate(linears, params, groups, all);
      if (!W.empty()) {
        clip_rows(W.size() == all.size() ? M : M.index_select(0, index_tensor(W, device)), max_grad_norm, out);
      }
      if (!Pp.empty()) out.partial_grads = M.index_select(0, index_tensor(Pp, device));
    } else {
      if (!W.empty()) book_keeping(linears, params, groups, W, max_grad_norm, out);
      // Views of these examples lie in other micro-batches too: the norm of their sum is not
      // known yet, so their partial gradients are instantiated for the accumulator.
      if (!Pp.empty()) out.partial_grads = instantiate(linears, params, groups, Pp);
    }
    if (W.empty()) {
      out.whole_norms = torch::zeros({0}, torch::kFloat64);
      out.clipped_sum = torch::zeros({set_.numel()}, set_.options());
    }
    return out;
  }

 private:
  // Forward with the observer, then ONE backward pass to the layer outputs and the replicas
  // (never to the weights: autograd skips the weight-gradient products nobody asked for).
  void backward(const MicroBatch& mb, int64_t R, double row_weight, const torch::Device& device,
                std::vector<LinearGrads>& linears, std::vector<ParamGrads>& params) {
    CaptureObserver obs(set_, R);
    torch::Tensor losses;
    {
      model::ScopedGradObserver scope(model_, &obs);
      losses = run_loss(mb, torch::arange(R, torch::TensorOptions().dtype(torch::kLong).device(device)));
    }
    std::vector<bool> covered(static_cast<size_t>(set_.size()), false);
    // Invariant 1 (one clipped gradient per example over ALL trainable tensors): a tensor seen
    // by two hooks (tied weights: two layers sharing one weight, or a weight that is also a
    // hooked parameter) would get two partial per-example gradients whose norms the strategies
    // would add as if they were different coordinates: the clipping norm would be wrong.
    auto cover = [&](int64_t index) {
      if (index < 0) return;
      VARDP_CHECK(!covered[static_cast<size_t>(index)], "trainable tensor '", set_.name(index),
                  "' is seen by two per-example-gradient hooks (tied weights); its per-example norm would be "
                  "wrong: untie it or use the reference strategy");
      covered[static_cast<size_t>(index)] = true;
    };
    std::vector<torch::Tensor> inputs;
    for (auto& l : obs.linears()) {
      for (auto& o : l.outputs) inputs.push_back(o);
      cover(l.weight);
      cover(l.bias);
    }
    for (auto& p : obs.params()) {
      for (auto& r : p.replicas) inputs.push_back(r);
      cover(p.index);
    }
    for (int64_t i = 0; i < set_.size(); ++i)
      if (!covered[static_cast<size_t>(i)])
        throw Error(str("trainable tensor '", set_.name(i), "' did not pass a per-example-gradient hook in the "
                        "forward (a Linear layer or a hooked parameter); use the reference strategy"),
                    grad_strategy_name(strategy_));
    torch::Tensor loss = losses.sum().mul(row_weight);
    std::vector<torch::Tensor> grads =
        torch::autograd::grad({loss}, inputs, /*grad_outputs=*/{}, /*retain_graph=*/false,
                              /*create_graph=*/false, /*allow_unused=*/true);
    const auto dtype = set_.options().dtype().toScalarType();
    size_t k = 0;
    for (auto& l : obs.linears()) {
      LinearGrads lg;
      lg.weight = l.weight;
      lg.bias = l.bias;
      std::vector<torch::Tensor> as, gs;
      for (size_t u = 0; u < l.outputs.size(); ++u, ++k) {
        torch::Tensor g = grads[k].defined() ? grads[k] : torch::zeros_like(l.outputs[u]);
        as.push_back(as_rows_tokens(l.inputs[u], R, dtype));
        gs.push_back(as_rows_tokens(g, R, dtype));
      }
      lg.a = as.size() == 1 ? as[0] : torch::cat(as, 1);
      lg.g = gs.size() == 1 ? gs[0] : torch::cat(gs, 1);
      if (lg.bias >= 0) lg.bias_rows = lg.g.sum(1);
      linears.push_back(std::move(lg));
    }
    for (auto& p : obs.params()) {
      ParamGrads pg;
      pg.index = p.index;
      for (auto& r : p.replicas) {
        torch::Tensor g = grads[k++];
        if (!g.defined()) g = torch::zeros(r.sizes(), set_.options());
        pg.rows = pg.rows.defined() ? pg.rows + g : g;
      }
      pg.rows = pg.rows.to(dtype);
      params.push_back(std::move(pg));
    }
  }

  // Per-example flat gradients (E, P) of the groups in `subset`.
  torch::Tensor instantiate(const std::vector<LinearGrads>& linears, const std::vector<ParamGrads>& params,
                            const RowGroups& groups, const std::vector<int64_t>& subset) {
    const int64_t E = static_cast<int64_t>(subset.size());
    torch::Tensor M = torch::zeros({E, set_.numel()}, set_.options());
    auto put = [&](int64_t index, const torch::Tensor& per_example) {
      M.narrow(1, set_.offset(index), set_.tensor(index).numel()).copy_(per_example.reshape({E, -1}));
    };
    for (const auto& l : linears) {
      if (l.weight >= 0) put(l.weight, group_weight_grads(l.a, l.g, groups, subset));
      if (l.bias >= 0) put(l.bias, group_sum(l.bias_rows, groups, subset));
    }
    for (const auto& p : params) put(p.index, group_sum(p.rows, groups, subset));
    return M;
  }

  // BK: per-example norms of the whole groups W without their gradients, then the clipped sum
  // from the stored a and g with each row weighted by its example's clip factor.
  void book_keeping(const std::vector<LinearGrads>& linears, const std::vector<ParamGrads>& params,
                    const RowGroups& groups, const std::vector<int64_t>& W, double max_grad_norm,
                    MicroBatchGrads& out) {
    const int64_t R = groups.num_rows();
    const torch::Device device = set_.options().device();
    torch::Tensor sq = torch::zeros({static_cast<int64_t>(W.size())}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
    auto sq_rows = [](const torch::Tensor& per_example) {
      torch::Tensor x = per_example.reshape({per_example.size(0), -1});
      return x.mul(x).sum(1, false, torch::kFloat64);
    };
    for (const auto& l : linears) {
      if (l.weight >= 0)
        sq += group_weight_sqnorms(l.a, l.g, groups, W, rule_, &out.ghost_norm_layers, &out.instantiated_norm_layers);
      if (l.bias >= 0) sq += sq_rows(group_sum(l.bias_rows, groups, W));
    }
    for (const auto& p : params) sq += sq_rows(group_sum(p.rows, groups, W));
    out.whole_norms = sq.sqrt();
    torch::Tensor f = clip_factors(out.whole_norms, max_grad_norm);

    // Row weights: the clip factor of the row's example, 0 for rows of partial examples.
    torch::Tensor fg = torch::zeros({groups.num_groups()}, f.options());
    fg.index_copy_(0, index_tensor(W, device), f);
    torch::Tensor w = fg.index_select(0, groups.group_of_row(device)).to(set_.options().dtype());

    torch::Tensor flat = torch::zeros({set_.numel()}, set_.options());
    for (const auto& l : linears) {
      if (l.weight >= 0) set_.slice(flat, l.weight).add_(weighted_weight_sum(l.a, l.g, w));
      if (l.bias >= 0) set_.slice(flat, l.bias).add_(torch::mv(l.bias_rows.t(), w));
    }
    for (const auto& p : params)
      set_.slice(flat, p.index).add_(torch::mv(p.rows.reshape({R, -1}).t(), w).view(set_.tensor(p.index).sizes()));
    out.clipped_sum = flat;
  }

  GradStrategy strategy_;
  NormRule rule_;
};

}  // namespace

torch::Tensor PerExampleGradients::flat_gradient(const MicroBatch& mb, const std::vector<int64_t>& rows,
                                                 double row_weight) {
  check_trainable(set_);
  torch::Tensor losses = run_loss(mb, index_tensor(rows, set_.options().device()));
  torch::Tensor loss = losses.sum().mul(row_weight);
  std::vector<torch::Tensor> grads =
      torch::autograd::grad({loss}, set_.tensors(), /*grad_outputs=*/{}, /*retain_graph=*/false,
                            /*create_graph=*/false, /*allow_unused=*/true);
  return set_.flatten(grads);
}

std::unique_ptr<PerExampleGradients> make_per_example_gradients(GradStrategy strategy, torch::nn::Module& model,
                                                                TrainableSet set, NormRule norm_rule) {
  if (strategy == GradStrategy::reference) return std::make_unique<ReferenceGradients>(model, std::move(set));
  return std::make_unique<HookedGradients>(model, std::move(set), strategy, norm_rule);
}

}  // namespace vardp::dp
