// Which (example, view) units each rank computes in a step. Pure functions of (seed, step, lot,
// layout), so every rank derives the whole plan without communication (invariant 6).
//
// Ranks form view groups of g consecutive ranks (g = [dist] view_group). Examples of a DP lot are
// dealt to the groups round-robin by their position in the lot; inside a group, view v of an
// example goes to the group's rank v mod g. Plain (non-DP) batches are dealt round-robin to all
// ranks with one view each.
#pragma once
#include <cstdint>
#include <vector>

#include "vardp/data/reader.hpp"

namespace vardp::train {

struct RankLayout {
  int rank = 0;
  int size = 1;
  int view_group = 1;  // g; must divide size
  int group() const { return rank / view_group; }
  int groups() const { return size / view_group; }
  int rank_in_group() const { return rank % view_group; }
};

// Throws UsageError unless 1 <= g <= size and g divides size.
void check_layout(const RankLayout& layout);

// This rank's units of a DP lot with k views per example, ordered by (lot position, view).
std::vector<data::Unit> dp_units(const std::vector<int64_t>& lot, int64_t views, const RankLayout& layout);

// Non-DP batches: epochs of ceil(N / B) steps over a permutation of the N examples drawn from
// the stream (seed, shuffle, epoch); step t is batch t mod steps_per_epoch of epoch
// t / steps_per_epoch (the last batch of an epoch may be smaller).
int64_t steps_per_epoch(int64_t num_examples, int64_t batch_size);
std::vector<int64_t> plain_batch(uint64_t seed, int64_t step, int64_t num_examples, int64_t batch_size);

// This rank's units of a plain batch (view 0 only).
std::vector<data::Unit> plain_units(const std::vector<int64_t>& batch, const RankLayout& layout);

}  // namespace vardp::train
