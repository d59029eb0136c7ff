#include "vardp/util/rng.hpp"

#include <cmath>

namespace vardp::rng {
namespace {
constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
inline void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}
}  // namespace

std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kM0, c[0], hi0, lo0);
    mulhilo(kM1, c[2], hi1, lo1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
    k[0] += kW0;
    k[1] += kW1;
  }
  return c;
}

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

Stream::Stream(uint64_t seed, Purpose purpose, uint64_t a, uint64_t b, uint64_t c) {
  key_ = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  uint64_t h = mix64(static_cast<uint64_t>(purpose));
  h = mix64(h ^ a);
  h = mix64(h ^ b);
  h = mix64(h ^ c);
  id_ = h;
}

uint32_t Stream::next_u32() {
  if (buffered_ == 0) {
    std::array<uint32_t, 4> ctr = {static_cast<uint32_t>(counter_), static_cast<uint32_t>(counter_ >> 32),
                                   static_cast<uint32_t>(id_), static_cast<uint32_t>(id_ >> 32)};
    buffer_ = philox4x32(ctr, key_);
    ++counter_;
    buffered_ = 4;
  }
  return buffer_[4 - buffered_--];
}

uint64_t Stream::next_u64() {
  uint64_t hi = next_u32();
  return (hi << 32) | next_u32();
}

double Stream::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Stream::normal() {
  double u1 = uniform();
  double u2 = uniform();
  // 1 - u1 is in (0, 1]: log is finite.
  return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2.0 * M_PI * u2);
}

uint64_t Stream::below(uint64_t n) {
  if (n <= 1) return 0;
  // Lemire-style rejection on the top of a 64-bit draw.
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = next_u64();
  } while (x >= limit);
  return x % n;
}

}  // namespace vardp::rng
