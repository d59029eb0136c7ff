// Vocabulary shared by the privacy accountants: one mechanism segment, the accountant kinds, the
// epochs -> steps convention. Pure C++ (no LibTorch).
//
// Privacy argument: DP-SGD is T adaptive compositions of the Poisson-subsampled Gaussian mechanism
// (sampling rate q, noise multiplier sigma = noise std / clipping norm). A run in which q or
// sigma changes is a heterogeneous composition of such segments; every accountant here bounds
// the composition of a list of segments.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vardp::dp {

// `steps` compositions of the Poisson-subsampled Gaussian mechanism with rate `sample_rate` and
// noise multiplier `noise_multiplier` (sensitivity 1 after clipping).
struct Segment {
  double sample_rate = 0.0;
  double noise_multiplier = 0.0;
  int64_t steps = 0;

  bool operator==(const Segment& o) const {
    return sample_rate == o.sample_rate && noise_multiplier == o.noise_multiplier &&
           steps == o.steps;
  }
  bool operator!=(const Segment& o) const { return !(*this == o); }
};

// rdp: Renyi-DP (Mironov et al.), a valid upper bound.
// prv: privacy random variables (Gopi et al. 2021), a valid upper bound with an explicit error.
// gdp: Gaussian-DP by the central limit theorem (Bu et al.); an approximation that can
//      UNDER-estimate epsilon. Kept for comparison with Opacus, never a guarantee.
enum class AccountantKind { rdp, prv, gdp };

AccountantKind parse_accountant(const std::string& name);  // throws vardp::UsageError
std::string to_string(AccountantKind kind);
// True for the accountants whose epsilon is a proven upper bound (rdp, prv).
bool is_guarantee(AccountantKind kind);

// Opacus' get_noise_multiplier convention: steps = int(epochs / sample_rate), the quotient
// correctly rounded in double precision and then truncated (int(90/0.04) == 2250, whereas the
// floor division 90//0.04 gives 2249). Throws vardp::Error for non-positive or non-finite input.
int64_t steps_from_epochs(double epochs, double sample_rate);

// Checks q in [0, 1], sigma >= 0 (finite), steps >= 0; throws vardp::Error naming `context`.
void validate_segment(const Segment& segment, const std::string& context = "privacy segment");
// Checks 0 < delta < 1.
void validate_delta(double delta, const std::string& context = "delta");

}  // namespace vardp::dp
