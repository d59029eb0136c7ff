// Poisson lot sampling for DP-SGD. The privacy analysis (amplification by subsampling in the
// RDP/PRV accountants) assumes every example joins every lot independently with probability q,
// and that the adversary does not know which examples joined: the membership coins are secret
// (invariant 6), drawn from the run secret's lot_membership stream, never from train.seed.
// A fixed-size shuffled batch would not match that analysis.
#pragma once
#include <cstdint>
#include <vector>

#include "vardp/dp/secret_coins.hpp"

namespace vardp::dp {

// Members of the lot of `step`: example i joins iff uniform53(word i of the (secret,
// lot_membership, step) stream) < q. Every rank computes the same lot without communication
// (invariant 6), and membership of example i does not depend on how many examples follow it.
// The lot may be empty: that is a valid step.
std::vector<int64_t> poisson_lot(const RunSecret& secret, int64_t step, int64_t num_examples, double sample_rate);

}  // namespace vardp::dp
