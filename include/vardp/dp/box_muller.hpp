// Box-Muller arithmetic of the secure Gaussian sampler (secure_noise.hpp), written so that it is
// deterministic (plain IEEE operations and bit manipulation, no libm: the same bits with any
// glibc, compiler vectorisation or instruction set without FMA) and vectorises (no branches, no
// int64 -> double conversions). Accuracy, checked against libm in dp_secret_coins_test: log to
// 2.3e-16 relative, cos + sin to 1.2e-15 absolute.
#pragma once
#include <cstdint>
#include <cstring>

namespace vardp::dp::box_muller {

inline double bits_to_double(uint64_t b) {
  double d;
  std::memcpy(&d, &b, 8);
  return d;
}
inline uint64_t double_to_bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, 8);
  return b;
}

// x in (0, 1] from the top 52 bits of w: 2 - [1, 2), exact (the radius' uniform; never 0, so
// the log is finite and |z| <= sqrt(2 * 52 ln 2) = 8.5).
inline double unit_interval_open_closed(uint64_t w) {
  return 2.0 - bits_to_double(0x3ff0000000000000ull | (w >> 12));
}

// Natural log of a positive normal double: x = m 2^e, m in [sqrt(1/2), sqrt(2)), log m by the
// atanh series.
inline double log_positive(double x) {
  const uint64_t bits = double_to_bits(x);
  // Exponent as a double without an int64 -> double conversion: 2^52 + E - (2^52 + 1023).
  const double e0 = bits_to_double(0x4330000000000000ull | (bits >> 52)) - 4503599627371519.0;  // 2^52 + 1023
  double m = bits_to_double((bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull);  // [1, 2)
  // m > sqrt(2): halve it (the exponent bit of m) and add 1 to e; bits only.
  const uint64_t big = (double_to_bits(m) & 0x000fffffffffffffull) > 0x6a09e667f3bcdull;  // sqrt 2 = 1.0x6a09e667f3bcd
  m = bits_to_double(double_to_bits(m) - (big << 52));
  const double e = e0 + bits_to_double(big * 0x3ff0000000000000ull);
  const double s = (m - 1.0) / (m + 1.0);  // |s| < 0.1716
  const double z = s * s;
  // log m = 2 atanh s = 2 s (1 + z/3 + z^2/5 + ...); z^12/25 < 1e-19.
  double p = 1.0 / 25;
  for (double d : {23.0, 21.0, 19.0, 17.0, 15.0, 13.0, 11.0, 9.0, 7.0, 5.0, 3.0}) p = p * z + 1.0 / d;
  const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  return e * ln2_hi + (2.0 * s + (2.0 * s * z * p + e * ln2_lo));
}

// cos(2 pi u) + sin(2 pi u) for the angle's uniform u = (w >> 12) 2^-52: the octant (top 3 bits)
// and the position inside it (next 49 bits) come from the bits exactly, so there is no range
// reduction error; sin and cos of phi in [-pi/4, pi/4) by Taylor polynomials to x^17 / x^18.
inline double cos_plus_sin_turn(uint64_t w) {
  const uint64_t octant = w >> 61;                                   // 0..7
  const double f = bits_to_double(0x3ff0000000000000ull | ((w >> 12) & 0x1ffffffffffffull) << 3) - 1.0;  // [0,1), 49 bits
  // phi = (f - odd) pi/4 in [-pi/4, pi/4): angle = quadrant pi/2 + phi. Integer and bit
  // operations only, so the loop vectorises.
  const double odd = bits_to_double((octant & 1) * 0x3ff0000000000000ull);  // 0.0 or 1.0
  const double phi = (f - odd) * 0.78539816339744830962;
  const uint64_t quadrant = ((octant + 1) >> 1) & 3;
  const double x2 = phi * phi;
  // sin phi = phi - phi^3 sp, sp = 1/3! - x2/5! + ... - x2^7/17!
  double sp = -1.0 / 355687428096000.0;
  for (double d : {1307674368000.0, -6227020800.0, 39916800.0, -362880.0, 5040.0, -120.0, 6.0}) sp = sp * x2 + 1.0 / d;
  const double s = phi - phi * x2 * sp;
  // cos phi = 1 - phi^2 cp, cp = 1/2! - x2/4! + ... + x2^8/18!
  double cp = 1.0 / 6402373705728000.0;
  for (double d : {-20922789888000.0, 87178291200.0, -479001600.0, 3628800.0, -40320.0, 720.0, -24.0, 2.0})
    cp = cp * x2 + 1.0 / d;
  const double c = 1.0 - x2 * cp;
  // sin + cos of quadrant pi/2 + phi: 0: s + c, 1: c - s, 2: -s - c, 3: s - c (sign flips by bits).
  const uint64_t flip_s = ((quadrant ^ (quadrant >> 1)) & 1) << 63, flip_c = (quadrant >> 1) << 63;
  return bits_to_double(double_to_bits(s) ^ flip_s) + bits_to_double(double_to_bits(c) ^ flip_c);
}

}  // namespace vardp::dp::box_muller
