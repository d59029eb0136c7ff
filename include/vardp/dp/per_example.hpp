// Per-example gradients of a set of trainable tensors, three ways behind one interface
// (privacy argument: invariant 1. DP-SGD's sensitivity bound holds only if every example's
// gradient - the mean over its k augmentation views, over ALL trainable tensors jointly - is
// clipped to norm C exactly once; these classes deliver those per-example gradients, or their
// norms and clipped sum, exactly).
//
//  * reference:   one forward and one backward pass per example (slow; tests and fallback);
//  * instantiate: one backward pass over the micro-batch; per-example weight gradients from the
//                 stored layer inputs and output gradients (Opacus' grad samplers);
//  * bk:          one backward pass; per-example norms by ghost norm or instantiation per layer
//                 (BK's hybrid rule), then the clipped sum sum_b c_b g_b^T a_b from the same
//                 stored tensors (fastDP's book-keeping: no second backward pass).
// Small broadcast parameters (positions, embeddings, q/v biases, scales) get exact per-example
// gradients from per-example replicas that the model's hook sites use (grad_hooks.hpp).
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vardp/dp/grad_sample.hpp"

namespace vardp::dp {

enum class GradStrategy { reference, instantiate, bk };
const char* grad_strategy_name(GradStrategy s);
GradStrategy parse_grad_strategy(const std::string& name);  // "reference" | "instantiate" | "bk"

// The tensors DP-SGD trains, in a fixed order that defines the flat layout of the clipped
// update (the flat L2 norm of invariant 1 runs over all of them). Names are state-dict keys of
// the model the set was taken from.
class TrainableSet {
 public:
  TrainableSet() = default;
  // The parameters of `root` whose name passes `select` (all when empty), in registration order.
  static TrainableSet from_module(torch::nn::Module& root,
                                  const std::function<bool(const std::string&)>& select = {});

  int64_t size() const { return static_cast<int64_t>(params_.size()); }
  bool empty() const { return params_.empty(); }
  const std::vector<std::string>& names() const { return names_; }
  const std::vector<torch::Tensor>& tensors() const { return params_; }
  const std::string& name(int64_t i) const { return names_[static_cast<size_t>(i)]; }
  const torch::Tensor& tensor(int64_t i) const { return params_[static_cast<size_t>(i)]; }
  int64_t index_of(const std::string& name) const;  // -1 when not in the set
  int64_t index_of_tensor(const torch::Tensor& t) const;  // the same tensor object; -1 when absent
  int64_t numel() const { return total_; }
  int64_t offset(int64_t i) const { return offsets_[static_cast<size_t>(i)]; }
  torch::TensorOptions options() const;  // dtype and device of the flat vectors

  // Tensor i's slice of a flat (P) vector, or of a (E, P) matrix as (E, *shape): views.
  torch::Tensor slice(const torch::Tensor& flat, int64_t i) const;
  // Concatenation of per-tensor gradients (undefined = zero) into one flat (P) vector.
  torch::Tensor flatten(const std::vector<torch::Tensor>& grads) const;
  // Sets every tensor's .grad to (a copy of) its slice of `flat`.
  void set_grads(const torch::Tensor& flat) const;

 private:
  std::vector<std::string> names_;
  std::vector<torch::Tensor> params_;
  std::vector<int64_t> offsets_;
  int64_t total_ = 0;
};

// VAR's "LayerNorm tuning" set: the AdaLN linears (blocks.N.ada_lin.1.*, head_nm.ada_lin.1.*,
// shared_ada_lin.1.*); VAR's LayerNorms carry no parameters of their own.
bool is_ada_lin(const std::string& name);

// One micro-batch: rows are (example, view) units. loss(rows) runs the forward on the selected
// rows (int64 indices into this micro-batch, in that order) and returns their per-row losses
// (rows.size()); every row's loss must depend on that row alone.
struct MicroBatch {
  std::vector<int64_t> example_ids;  // one per row
  std::function<torch::Tensor(const torch::Tensor& rows)> loss;
};

// What one micro-batch contributes to a step. A group (example) is "whole" when all of its views
// are in this micro-batch; then it is clipped here. The others are returned unclipped.
struct MicroBatchGrads {
  std::vector<int64_t> whole_ids;  // example ids
  torch::Tensor whole_norms;       // (E_w) float64: pre-clip norms
  torch::Tensor clipped_sum;       // (P): sum over whole examples of clip_C(gradient)
  std::vector<int64_t> partial_ids;
  torch::Tensor partial_grads;     // (E_p, P): the sum of these rows' weighted gradients
  int64_t ghost_norm_layers = 0;        // BK: (layer, bucket) norms taken by ghost norm
  int64_t instantiated_norm_layers = 0; // BK: ... by instantiation
};

class PerExampleGradients {
 public:
  PerExampleGradients(torch::nn::Module& model, TrainableSet set) : model_(model), set_(std::move(set)) {}
  virtual ~PerExampleGradients() = default;
  virtual GradStrategy strategy() const = 0;
  const TrainableSet& trainable() const { return set_; }

  // Per-row losses are weighted by `row_weight` (1/k: a view's share of its example's mean);
  // whole[e] says whether group e of `groups` is clipped here (see MicroBatchGrads).
  virtual MicroBatchGrads run(const MicroBatch& mb, const RowGroups& groups, const std::vector<bool>& whole,
                              double row_weight, double max_grad_norm) = 0;

  // The flat gradient of row_weight * sum of the listed rows' losses: a plain backward pass,
  // no hooks. For the rows of ONE example this is that example's (partial) gradient: the
  // one-example x many-views layout needs nothing more.
  torch::Tensor flat_gradient(const MicroBatch& mb, const std::vector<int64_t>& rows, double row_weight);

 protected:
  torch::nn::Module& model_;
  TrainableSet set_;
};

// `model` is the module whose state-dict names `set` uses (its hooks report those names).
std::unique_ptr<PerExampleGradients> make_per_example_gradients(GradStrategy strategy, torch::nn::Module& model,
                                                                TrainableSet set,
                                                                NormRule norm_rule = NormRule::cost);

}  // namespace vardp::dp
