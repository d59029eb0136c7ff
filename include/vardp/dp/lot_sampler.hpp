// Poisson lot sampling for DP-SGD. The privacy analysis (amplification by subsampling in the
// RDP/PRV accountants) assumes every example joins every lot independently with probability q;
// a fixed-size shuffled batch would not match that analysis.
#pragma once
#include <cstdint>
#include <vector>

namespace vardp::dp {

// Members of the lot of `step`: example i joins iff a uniform draw of the counter-based stream
// (seed, lot_sampling, step, i) is below q. Every rank computes the same lot without
// communication (ARCHITECTURE invariant 6). The lot may be empty: that is a valid step.
std::vector<int64_t> poisson_lot(uint64_t seed, int64_t step, int64_t num_examples, double sample_rate);

}  // namespace vardp::dp
