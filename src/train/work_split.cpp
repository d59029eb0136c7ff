// Deterministic split of a step's work over ranks and view groups.
#include "vardp/train/work_split.hpp"

#include <algorithm>
#include <numeric>

#include "vardp/util/error.hpp"
#include "vardp/util/rng.hpp"

namespace vardp::train {

void check_layout(const RankLayout& l) {
  if (l.view_group < 1 || l.view_group > l.size || l.size % l.view_group != 0)
    throw UsageError(str("dist.view_group = ", l.view_group, " must divide the number of ranks (", l.size, ")"),
                     "dist.view_group");
}

std::vector<data::Unit> dp_units(const std::vector<int64_t>& lot, int64_t views, const RankLayout& l) {
  std::vector<data::Unit> units;
  for (size_t pos = 0; pos < lot.size(); ++pos) {
    if (static_cast<int>(pos % static_cast<size_t>(l.groups())) != l.group()) continue;
    for (int64_t v = l.rank_in_group(); v < views; v += l.view_group) units.push_back({lot[pos], v});
  }
  return units;
}

int64_t steps_per_epoch(int64_t n, int64_t b) {
  VARDP_CHECK(n > 0 && b > 0, "steps_per_epoch: N and batch size must be positive");
  return (n + b - 1) / b;
}

std::vector<int64_t> plain_batch(uint64_t seed, int64_t step, int64_t n, int64_t b) {
  const int64_t per_epoch = steps_per_epoch(n, b);
  const int64_t epoch = step / per_epoch, index = step % per_epoch;
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  rng::Stream s(seed, rng::Purpose::shuffle, static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i)  // Fisher-Yates
    std::swap(perm[static_cast<size_t>(i)], perm[s.below(static_cast<uint64_t>(i + 1))]);
  const int64_t lo = index * b, hi = std::min(n, lo + b);
  return std::vector<int64_t>(perm.begin() + lo, perm.begin() + hi);
}

std::vector<data::Unit> plain_units(const std::vector<int64_t>& batch, const RankLayout& l) {
  std::vector<data::Unit> units;
  for (size_t pos = static_cast<size_t>(l.rank); pos < batch.size(); pos += static_cast<size_t>(l.size))
    units.push_back({batch[pos], 0});
  return units;
}

}  // namespace vardp::train
