// Counter-based PUBLIC random streams (ARCHITECTURE invariant 6): every random draw is a pure
// function of (seed, purpose, step, example, view, index), so it is the same whichever rank makes
// it and however the work is split. The seed is public (it is in every output): the mechanism's
// coins of DP use the secret streams of dp/secret_coins.hpp instead. Philox4x32-10 (Salmon et al. 2011), the generator behind cuRAND's
// and JAX's counter-based streams.
#pragma once
#include <array>
#include <cstdint>

namespace vardp::rng {

// Purposes keep streams of different consumers apart. Append new ones; never renumber.
enum class Purpose : uint32_t {
  // 1 and 2 are retired: the DP coins (Poisson lots, Gaussian noise) must never come from the
  // public train.seed; they are drawn from the run secret's streams (dp/secret_coins.hpp).
  lot_sampling = 1,
  dp_noise = 2,
  view = 3,           // crop/flip of an augmentation view (data)
  label_dropout = 4,  // classifier-free-guidance label dropout
  drop_path = 5,
  init = 6,           // parameter initialisation (LoRA, class embeddings)
  sampling = 7,       // autoregressive sampling
  lora_dropout = 8,
  shuffle = 9,
  test = 100,
};

// Philox4x32-10 block function.
std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// A stream identified by (seed, purpose, a, b, c); draws are indexed by a 64-bit counter.
class Stream {
 public:
  Stream(uint64_t seed, Purpose purpose, uint64_t a = 0, uint64_t b = 0, uint64_t c = 0);
  uint64_t next_u64();
  uint32_t next_u32();
  double uniform();           // [0, 1) with 53 random bits
  double normal();            // standard normal (Box-Muller on two uniforms)
  uint64_t below(uint64_t n); // uniform integer in [0, n), unbiased
  // A 64-bit seed derived from this stream, e.g. for seeding a torch::Generator.
  uint64_t derive_seed() { return next_u64(); }
  uint64_t position() const { return counter_; }
  void set_position(uint64_t position) { counter_ = position; buffered_ = 0; }

 private:
  std::array<uint32_t, 2> key_;
  uint64_t id_;        // hash of (purpose, a, b, c) -> counter words 2..3
  uint64_t counter_ = 0;
  std::array<uint32_t, 4> buffer_{};
  int buffered_ = 0;
};

// splitmix64 finaliser: a good 64-bit mixing function.
uint64_t mix64(uint64_t x);

}  // namespace vardp::rng
