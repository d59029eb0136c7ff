// Per-layer math of per-example gradients for DP-SGD (privacy argument: the sensitivity bound of
// invariant 1 needs each example's exact gradient norm, over all of its augmentation views, before
// it is clipped; an underestimated norm would under-clip and break the guarantee).
//
// Rows of a micro-batch are (example, view) units; the rows of one example form one group and
// the group's gradient is the sum of its rows' (loss-weighted) gradients. For a linear layer
// y = x W^T + b seen by row r with inputs a_r (T, in) and output gradients g_r (T, out):
//   dW_r = g_r^T a_r,   db_r = sum_t g_r[t],
// and a group's dW = sum_{r in group} g_r^T a_r = G^T A with A, G the group's rows' tokens
// concatenated. Its squared norm is either taken from the instantiated dW (Opacus) or from the
// Gram matrices, ||G^T A||_F^2 = <A A^T, G G^T>_F (ghost norm, Li et al. 2021; Bu et al. 2022),
// which never forms dW. Both are exact; they differ in cost: the instantiation costs about
// 2 T in out per row and in*out memory, the ghost norm 2 T^2 (in + out) and T^2 memory.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace vardp::dp {

// How a per-example gradient norm of a linear weight is obtained.
enum class NormRule {
  cost,         // fastDP's hybrid rule: ghost norm iff 2 T^2 < in * out, T = tokens per example
  ghost,        // always the Gram-matrix norm
  instantiate,  // always from the instantiated per-example weight gradient
};
const char* norm_rule_name(NormRule r);
NormRule parse_norm_rule(const std::string& name);  // "cost" | "ghost" | "instantiate"

// True when the per-example norm of an (out x in) weight seen over `tokens` tokens per example
// should come from Gram matrices (the rule of BK's "mixed ghost norm").
bool use_ghost_norm(NormRule rule, int64_t tokens, int64_t in_features, int64_t out_features);

// The rows of a micro-batch grouped by example, groups numbered in order of first appearance.
class RowGroups {
 public:
  explicit RowGroups(const std::vector<int64_t>& example_of_row);

  int64_t num_rows() const { return static_cast<int64_t>(group_of_row_.size()); }
  int64_t num_groups() const { return static_cast<int64_t>(ids_.size()); }
  int64_t example(int64_t group) const { return ids_[static_cast<size_t>(group)]; }
  const std::vector<int64_t>& examples() const { return ids_; }
  const std::vector<int64_t>& rows(int64_t group) const { return rows_[static_cast<size_t>(group)]; }
  // int64 (R): the group of each row.
  torch::Tensor group_of_row(const torch::Device& device) const;
  // int64 indices of the given groups' rows, group by group.
  torch::Tensor rows_of(const std::vector<int64_t>& groups, const torch::Device& device) const;

  // Groups with the same number of rows, so that their rows can be stacked (E_c, c*T, d).
  struct Bucket {
    int64_t rows_per_group = 0;
    std::vector<int64_t> groups;  // positions in the caller's `subset`
    std::vector<int64_t> rows;    // their rows, group by group
  };
  std::vector<Bucket> buckets(const std::vector<int64_t>& subset) const;

 private:
  std::vector<int64_t> ids_;
  std::vector<int64_t> group_of_row_;
  std::vector<std::vector<int64_t>> rows_;
};

// a: (R, T, in) inputs and g: (R, T, out) output gradients of one linear layer, per row.

// Per-group weight gradients (E, out, in) for the groups in `subset` (E = subset.size()).
torch::Tensor group_weight_grads(const torch::Tensor& a, const torch::Tensor& g, const RowGroups& groups,
                                 const std::vector<int64_t>& subset);

// Per-group squared Frobenius norms (E) in float64 of the weight gradients of `subset`, each bucket
// of groups by ghost norm or instantiation according to `rule`. `ghost_used`, when given, counts
// the buckets done by ghost norm and by instantiation ({ghost, instantiated}).
torch::Tensor group_weight_sqnorms(const torch::Tensor& a, const torch::Tensor& g, const RowGroups& groups,
                                   const std::vector<int64_t>& subset, NormRule rule,
                                   int64_t* ghost_count = nullptr, int64_t* instantiated_count = nullptr);

// sum_r w_r g_r^T a_r (out, in): the clipped sum of a weight with w_r = the clip factor of row
// r's example (0 for rows that are not summed here). The same cost as a non-private weight
// gradient: this is the "book-keeping" second half of BK (no second backward pass).
torch::Tensor weighted_weight_sum(const torch::Tensor& a, const torch::Tensor& g, const torch::Tensor& w);

// Sums per-row tensors x (R, ...) over the rows of each group of `subset`: (E, ...).
torch::Tensor group_sum(const torch::Tensor& x, const RowGroups& groups, const std::vector<int64_t>& subset);

// Row numbers as a kLong tensor on `device` (for index_select / index_add_).
torch::Tensor index_tensor(const std::vector<int64_t>& rows, const torch::Device& device);

}  // namespace vardp::dp
