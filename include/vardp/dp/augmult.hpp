// Augmentation multiplicity: accumulation of an example's gradient over its k views (privacy
// argument: invariant 1 - the privacy unit is the EXAMPLE, so the gradients of its k views are
// averaged first and the mean is clipped once; clipping each view, or a part of the views,
// separately would let one example contribute up to k*C).
//
// Views of one example may be spread over several micro-batches and, with view groups, over
// several ranks. The accumulator keeps the partial sums (each view's gradient already weighted
// by 1/k) and the number of views seen, and releases an example only when all k views are in.
// For view groups the partial sums of the examples a group shares are summed over the group's
// ranks with one all-reduce before clipping (reduce_over).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <vector>

#include "vardp/dist/tensor_comm.hpp"

namespace vardp::dp {

class ExampleAccumulator {
 public:
  // Forgets everything; k views complete an example, gradients are flat (numel) vectors.
  void reset(int64_t views_per_example, int64_t numel, const torch::TensorOptions& options);

  int64_t views_per_example() const { return k_; }
  // Views of `example` added so far (0 when none or when already taken).
  int64_t seen(int64_t example) const;
  // Adds the summed (weighted) gradient of `views` views of `example`; returns true when the
  // example now has all k views. Throws when it would exceed k.
  bool add(int64_t example, const torch::Tensor& flat_partial, int64_t views);
  // Removes a complete example and returns its gradient (the mean over its k views).
  torch::Tensor take(int64_t example);
  // Example ids with a partial sum, ascending.
  std::vector<int64_t> pending() const;
  bool empty() const { return partial_.empty(); }
  void clear() { partial_.clear(); }

  // View groups: sums the partial gradients and view counts of the examples in `examples`
  // (ascending ids, the same list on every rank of `group`; missing ones count as zero) over the
  // ranks of `group`. Afterwards every rank of the group holds the group's totals for them.
  // Returns the summed view counts, one per listed example.
  std::vector<int64_t> reduce_over(dist::TensorComm& group, const std::vector<int64_t>& examples);

 private:
  struct Partial {
    torch::Tensor sum;
    int64_t views = 0;
  };
  int64_t k_ = 1;
  int64_t numel_ = 0;
  torch::TensorOptions options_;
  std::map<int64_t, Partial> partial_;
};

}  // namespace vardp::dp
