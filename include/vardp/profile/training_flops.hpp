// FLOPs of training steps and runs: the per-example-view model (var_flops.hpp, tokenizer_flops.hpp)
// times the step's example-views, plus what DP-SGD and the optimizer add, reported apart.
//
//  * total (the paper's count, Figures 1 and 3: forward + backward over all steps): VQ-VAE
//    tokenisation forward (when it runs: not with a token cache) + VAR forward + VAR backward
//    (input gradients + weight gradients of trained weights) of every example-view; augmentation
//    multiplicity k puts k views of each example through all of it.
//  * dp_extra: what the per-example-gradient strategy (dp.grad_sample_mode) computes beyond that,
//    from the micro-batch layout of the step (src/dp/per_example.cpp, grad_sample.cpp, engine.cpp):
//    - a micro-batch holding ONE example: a plain backward (its weight gradients are the backward
//      count); then the flat gradient's norm, scaling and addition (4 P, P = trained elements);
//    - reference: one forward + backward per example (no extra products), 4 P per example;
//    - instantiate: the per-example weight gradients G^T A replace the batched weight gradient (same
//      count, part of backward); norms and clipped sum 4 P per example;
//    - bk: per trained linear weight and example, its gradient norm from the stored activations A
//      and output gradients G of its k views together (T = k x tokens): by Gram matrices,
//      2 T^2 (in + out) + 2 T^2, or by instantiation, 2 T in out + 2 in out, whichever
//      dp::use_ghost_norm picks for the layer (fastDP's cost rule); then the clipped sum
//      sum_r c_r G_r^T A_r (the weight gradient itself: backward count) after scaling G by the clip
//      factors (rows x tokens x out); bias and small tensors 2 numel per example + 2 numel per row.
//      Examples whose views are split over micro-batches have their partial gradients instantiated
//      (2 c T in out per layer) besides;
//    - every example not whole in one micro-batch: P per partial accumulation, 4 P when clipped;
//      P per micro-batch for adding its clipped sum; noise: one Gaussian draw and one addition per
//      trained element on rank 0 (2 P), the division by q N on every rank (P per rank).
//    dp_extra_matmul is the part of dp_extra made of matrix products (Gram matrices, extra
//    instantiations): what a matmul profiler sees on top of forward + backward.
//  * optimizer: the update rule on every rank (replicated): AdamW 13 FLOPs per trained element
//    (+1 where weight decay applies), SGD 2 (+2 weight decay, +2 momentum).
// Not counted: all-reduces, data loading, elementwise work of forward and backward.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vardp/config/config.hpp"
#include "vardp/dp/grad_sample.hpp"
#include "vardp/dp/per_example.hpp"
#include "vardp/profile/tokenizer_flops.hpp"
#include "vardp/profile/var_flops.hpp"

namespace vardp::profile {

// The views of each example in one micro-batch, in order of first appearance (engine.cpp groups
// the rows of a micro-batch by example; an example is clipped there when all k views are in it).
struct MicroBatchShape {
  std::vector<int64_t> views;
  int64_t rows() const;
};

// Every micro-batch of one step over all ranks.
struct StepShape {
  int64_t examples = 0;  // DP: the lot; plain: the batch
  int64_t views = 1;     // k
  int64_t ranks = 1;
  std::vector<MicroBatchShape> micro_batches;
  int64_t rows() const;
};

// Cuts each rank's units (the example id of each unit, in the order the rank runs them) into
// micro-batches of `micro_batch` consecutive units, as the trainer does.
StepShape shape_from_units(const std::vector<std::vector<int64_t>>& examples_per_rank, int64_t micro_batch,
                           int64_t views);

struct StepFlops {
  double rows = 0;  // example-views
  double examples = 0;
  double tokenize = 0, forward = 0, backward = 0;
  double dp_extra = 0, dp_extra_matmul = 0;
  double optimizer = 0;
  std::vector<ModuleFlops> modules;  // per-view rows + dp/optimizer rows with their per-step extras

  double total() const { return tokenize + forward + backward; }  // the paper's count
  double executed() const { return total() + dp_extra + optimizer; }
  StepFlops& operator+=(const StepFlops& o);  // totals only; modules are kept from the left side
  StepFlops scaled(double factor) const;      // totals and module step columns times factor
};

struct DpCostOptions {
  dp::GradStrategy strategy = dp::GradStrategy::bk;
  dp::NormRule norm_rule = dp::NormRule::cost;
};

// The cost of training one adapted VAR: built once per run.
class TrainingFlopModel {
 public:
  // tokenizer: the VQ-VAE's numbers; token_cache: training reads tokens (encoder and quantiser
  // skipped, var_input still runs); dp: DP-SGD with that per-example-gradient strategy.
  TrainingFlopModel(VarTrainingGraph graph, const TokenizerFlops& tokenizer, bool token_cache,
                    const config::TrainConfig& optimizer, std::optional<DpCostOptions> dp);

  const VarTrainingGraph& graph() const { return graph_; }
  const std::vector<ModuleFlops>& per_view() const { return per_view_; }
  // Per example-view sums of the per_view() rows.
  double tokenize_per_view() const;
  double forward_per_view() const;
  double backward_per_view() const;
  // The optimizer update of one rank.
  double optimizer_per_rank() const { return optimizer_per_rank_; }

  StepFlops step(const StepShape& shape) const;

 private:
  void add_dp_extras(const StepShape& shape, StepFlops& f) const;

  VarTrainingGraph graph_;
  std::vector<ModuleFlops> per_view_;
  std::optional<DpCostOptions> dp_;
  double optimizer_per_rank_ = 0;
};

}  // namespace vardp::profile
