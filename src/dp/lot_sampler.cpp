#include "vardp/dp/lot_sampler.hpp"

#include "vardp/util/error.hpp"
#include "vardp/util/rng.hpp"

namespace vardp::dp {

std::vector<int64_t> poisson_lot(uint64_t seed, int64_t step, int64_t num_examples, double sample_rate) {
  if (!(sample_rate > 0.0 && sample_rate <= 1.0)) throw Error(str("sample rate ", sample_rate, " not in (0, 1]"), "dp");
  std::vector<int64_t> lot;
  lot.reserve(static_cast<size_t>(num_examples * sample_rate * 1.2) + 16);
  for (int64_t i = 0; i < num_examples; ++i) {
    // One stream per (step, example): membership does not depend on how many examples exist
    // after i, or on the order in which ranks evaluate them.
    rng::Stream s(seed, rng::Purpose::lot_sampling, static_cast<uint64_t>(step), static_cast<uint64_t>(i));
    if (s.uniform() < sample_rate) lot.push_back(i);
  }
  return lot;
}

}  // namespace vardp::dp
