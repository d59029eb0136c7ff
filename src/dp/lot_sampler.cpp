#include "vardp/dp/lot_sampler.hpp"

#include <algorithm>

#include "vardp/util/error.hpp"

namespace vardp::dp {

std::vector<int64_t> poisson_lot(const RunSecret& secret, int64_t step, int64_t num_examples, double sample_rate) {
  if (!(sample_rate > 0.0 && sample_rate <= 1.0)) throw Error(str("sample rate ", sample_rate, " not in (0, 1]"), "dp");
  VARDP_CHECK(step >= 0 && num_examples >= 0, "poisson_lot: negative step or dataset size");
  const SecretStream stream(secret, SecretPurpose::lot_membership, static_cast<uint64_t>(step));
  std::vector<int64_t> lot;
  lot.reserve(static_cast<size_t>(static_cast<double>(num_examples) * sample_rate * 1.2) + 16);
  constexpr int64_t kBatch = 4096;  // words read per keystream call
  std::vector<uint64_t> words(kBatch);
  for (int64_t lo = 0; lo < num_examples; lo += kBatch) {
    const int64_t n = std::min(kBatch, num_examples - lo);
    stream.words(words.data(), static_cast<size_t>(n), static_cast<uint64_t>(lo));
    for (int64_t i = 0; i < n; ++i)
      if (uniform53(words[static_cast<size_t>(i)]) < sample_rate) lot.push_back(lo + i);
  }
  return lot;
}

}  // namespace vardp::dp
