// The DP-SGD step: per-example gradients (mean over k views), flat clipping over all trainable
// tensors, one Gaussian noise draw, normalisation by q*N. Privacy argument implemented here:
//  * invariant 1 - every example of the lot contributes exactly one gradient, the mean over its
//    k views, clipped once to C jointly over the trainable tensors (sensitivity C);
//  * invariant 2 - the noise is added once per step, on rank 0, whatever the number of
//    micro-batches or ranks, empty lots included (privatize_in_place);
//  * invariant 3 - the sum is divided by the expected lot size q*N, never the realised one.
//
// Use, once per step on every rank:
//   engine.begin_step(lot);                 // the Poisson lot, the same on every rank
//   for each micro-batch of this rank's (example, view) rows: engine.feed(mb);
//   [engine.reduce_view_group(group);]      // when views of an example lie on several ranks
//   torch::Tensor update = engine.finish_step(comm, noise, step);  // also sets each .grad
//
// A micro-batch may hold many examples with a few views each (per-example machinery of the
// chosen strategy), or views of ONE example only (a plain backward pass gives its gradient; no
// hooks). Views of an example may be split over micro-batches: their partial sums wait in the
// accumulator until all k are in (the BK strategy instantiates such partial examples, since the
// norm of a sum is not the sum of norms; examples whose k views share one micro-batch get the
// ghost norm over their views' tokens taken together).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "vardp/dist/tensor_comm.hpp"
#include "vardp/dp/augmult.hpp"
#include "vardp/dp/per_example.hpp"
#include "vardp/dp/privatize.hpp"
#include "vardp/model/var.hpp"

namespace vardp::dp {

struct EngineOptions {
  GradStrategy strategy = GradStrategy::bk;
  NormRule norm_rule = NormRule::cost;  // BK's per-layer choice
  double max_grad_norm = 1.0;           // C
  int64_t augmult = 1;                  // k views per example
};

// Per-step diagnostics. Norms and clip fractions are computed from private data: they are
// NON-PRIVATE diagnostics (invariant 5), to be logged as such, never used to steer training.
struct StepStats {
  int64_t step = -1;
  int64_t lot_size = 0;        // realised lot size
  int64_t examples = 0;        // examples clipped in the step (all ranks)
  double mean_norm = 0;        // mean pre-clip per-example norm (all ranks)
  double max_norm = 0;
  double clip_fraction = 0;    // fraction of examples whose gradient was scaled down
  int64_t micro_batches = 0;   // this rank
  int64_t rows = 0;            // (example, view) rows this rank processed
  int64_t ghost_norm_layers = 0;         // BK, this rank: (layer, bucket) norms by ghost norm
  int64_t instantiated_norm_layers = 0;  // ... by instantiation
};

class DpEngine {
 public:
  // `model` is the module whose parameter names `set` uses. It must be owned by a shared_ptr
  // (as every TORCH_MODULE is): the hooked strategies attach their observer by walking the
  // module tree from it, which LibTorch allows only for shared modules.
  DpEngine(torch::nn::Module& model, TrainableSet set, EngineOptions options);

  const EngineOptions& options() const { return opt_; }
  const TrainableSet& trainable() const { return grads_->trainable(); }
  PerExampleGradients& strategy() { return *grads_; }

  // Starts a step for the examples of `lot` (ids; every rank passes the same lot).
  void begin_step(std::vector<int64_t> lot);
  // One micro-batch of this rank's rows; every row's example must be in the lot, no example may
  // receive more than k views in the step.
  void feed(const MicroBatch& mb);
  // View groups: sums the partial gradients of examples whose views are spread over the ranks
  // of `group` (collective over `group`; call after the last micro-batch). Rank 0 of the group
  // then clips each such example once; the other ranks of the group drop their copies.
  void reduce_view_group(dist::TensorComm& group);
  // Collective over `comm`: checks that every lot example was clipped exactly once, adds the
  // noise (rank 0), all-reduces, divides by q*N. Returns the flat update (trainable().numel())
  // and, with write_grads, copies it into the trainable tensors' .grad.
  torch::Tensor finish_step(dist::TensorComm& comm, const NoiseSpec& spec, int64_t step, bool write_grads = true);

  const StepStats& stats() const { return stats_; }
  // This rank's sum of clipped per-example gradients so far in the step (before noise).
  const torch::Tensor& local_clipped_sum() const { return sum_; }
  // Pre-clip norms of the examples this rank clipped in the current (or last) step, by id.
  const std::map<int64_t, double>& example_norms() const { return norms_; }

 private:
  void clip_and_add(int64_t example, const torch::Tensor& flat);
  void record_norm(int64_t example, double norm);

  EngineOptions opt_;
  std::unique_ptr<PerExampleGradients> grads_;
  ExampleAccumulator acc_;
  std::vector<int64_t> lot_;
  std::map<int64_t, int64_t> lot_pos_;
  std::map<int64_t, double> norms_;
  std::set<int64_t> dropped_;  // examples clipped by another rank of the view group
  torch::Tensor sum_;
  StepStats stats_;
  bool in_step_ = false;
};

// The VAR teacher-forcing loss per row for MicroBatch::loss: rows of labels (R), x_BLCv
// (R, L - first_l, Cvae) and targets (R, L) are selected, VAR.forward runs on them and the
// official per-example loss (token cross-entropy, weight 1/L) is returned. Randomness must be
// explicit and per row so that any subset of rows sees the same draws: opt.label_drop_mask (R)
// and opt.drop_path_keep (depth, R) are sliced with the rows; opt.cond_drop_rate must be 0.
std::function<torch::Tensor(const torch::Tensor&)> var_row_loss(model::VAR var, torch::Tensor labels,
                                                                 torch::Tensor x_BLCv, torch::Tensor targets,
                                                                 model::ForwardOptions opt = {},
                                                                 double label_smoothing = 0.0);

}  // namespace vardp::dp
