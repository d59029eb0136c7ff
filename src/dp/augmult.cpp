// Per-example accumulation over augmentation views (privacy argument: invariant 1 - one
// example, one clipped gradient, the mean over its k views; see augmult.hpp).
#include "vardp/dp/augmult.hpp"

#include "vardp/util/error.hpp"

namespace vardp::dp {

void ExampleAccumulator::reset(int64_t views_per_example, int64_t numel, const torch::TensorOptions& options) {
  VARDP_CHECK(views_per_example >= 1, "augmult must be >= 1, got ", views_per_example);
  k_ = views_per_example;
  numel_ = numel;
  options_ = options;
  partial_.clear();
}

int64_t ExampleAccumulator::seen(int64_t example) const {
  auto it = partial_.find(example);
  return it == partial_.end() ? 0 : it->second.views;
}

bool ExampleAccumulator::add(int64_t example, const torch::Tensor& flat_partial, int64_t views) {
  VARDP_CHECK(views >= 1, "example ", example, ": adding ", views, " views");
  VARDP_CHECK(flat_partial.dim() == 1 && flat_partial.size(0) == numel_, "example ", example,
              ": partial gradient ", flat_partial.sizes(), " for ", numel_, " trainable elements");
  Partial& p = partial_[example];
  if (p.views + views > k_) {
    const int64_t had = p.views;
    if (had == 0) partial_.erase(example);
    throw Error(str("example ", example, " would get ", had + views, " views, augmult is ", k_));
  }
  if (p.sum.defined())
    p.sum.add_(flat_partial);
  else
    p.sum = flat_partial.to(options_).clone();
  p.views += views;
  return p.views == k_;
}

torch::Tensor ExampleAccumulator::take(int64_t example) {
  auto it = partial_.find(example);
  VARDP_CHECK(it != partial_.end(), "example ", example, " has no accumulated gradient");
  VARDP_CHECK(it->second.views == k_, "example ", example, " has ", it->second.views, " of ", k_, " views");
  torch::Tensor g = std::move(it->second.sum);
  partial_.erase(it);
  return g;
}

std::vector<int64_t> ExampleAccumulator::pending() const {
  std::vector<int64_t> ids;
  for (const auto& kv : partial_) ids.push_back(kv.first);
  return ids;
}

std::vector<int64_t> ExampleAccumulator::reduce_over(dist::TensorComm& group, const std::vector<int64_t>& examples) {
  const int64_t n = static_cast<int64_t>(examples.size());
  std::vector<int64_t> counts(static_cast<size_t>(n), 0);
  if (n == 0) return counts;
  torch::Tensor sums = torch::zeros({n, numel_}, options_);
  torch::Tensor views = torch::zeros({n}, torch::TensorOptions().dtype(torch::kLong));
  for (int64_t i = 0; i < n; ++i) {
    auto it = partial_.find(examples[static_cast<size_t>(i)]);
    if (it == partial_.end()) continue;
    sums[i].copy_(it->second.sum);
    views[i] = it->second.views;
  }
  group.all_reduce(sums, dist::ReduceOp::sum);
  group.all_reduce(views, dist::ReduceOp::sum);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = views[i].item<int64_t>();
    counts[static_cast<size_t>(i)] = v;
    // The group total replaces this rank's part; it may exceed k only through a bug elsewhere,
    // which the caller reports.
    Partial& p = partial_[examples[static_cast<size_t>(i)]];
    p.sum = sums[i].clone();
    p.views = v;
  }
  return counts;
}

}  // namespace vardp::dp
