// The mechanism's coins (invariant 6): the run secret, its ChaCha20 streams, the Gaussian
// sampler and the noise prefetcher. Reference values of the streams come from an independent
// ChaCha20 (RFC 8439's test vector, and OpenSSL's ChaCha20 through python3-cryptography for our
// (purpose, step) nonce layout), not from this code.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "vardp/dp/box_muller.hpp"
#include "vardp/dp/lot_sampler.hpp"
#include "vardp/dp/secret_coins.hpp"
#include "vardp/dp/secure_noise.hpp"

namespace vardp::dp {
namespace {

RunSecret key_of(const std::string& byte_hex) {
  std::string hex;
  for (int i = 0; i < 32; ++i) hex += byte_hex;
  return RunSecret::from_hex(hex);
}

std::string hex_of(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(d[p[i] >> 4]);
    s.push_back(d[p[i] & 15]);
  }
  return s;
}

TEST(SecretStream, Rfc8439BlockFunctionTestVector) {
  // RFC 8439 section 2.3.2: key 00..1f, nonce 00:00:00:09:00:00:00:4a:00:00:00:00, counter 1.
  // Our nonce is (purpose u32 LE, step u64 LE): purpose 0x09000000, step 0x4a000000.
  std::string hex;
  for (int i = 0; i < 32; ++i) hex += hex_of(reinterpret_cast<const uint8_t*>(&i), 1);
  const RunSecret key = RunSecret::from_hex(hex);
  SecretStream s(key, static_cast<SecretPurpose>(0x09000000u), 0x4a000000u);
  uint8_t block[64];
  s.fill(block, 64, 1);
  EXPECT_EQ(hex_of(block, 64),
            "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
            "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e");
}

TEST(SecretStream, NonceLayoutAndWordsMatchAnIndependentChaCha20) {
  // python3-cryptography (OpenSSL): key 0x11 * 32, nonce LE(100) || LE(7), counter 3, 16 bytes.
  const RunSecret key = key_of("11");
  SecretStream s(key, SecretPurpose::test, 7);
  uint64_t w[2];
  s.words(w, 2, 3 * 8);  // word 24 = first word of block 3
  EXPECT_EQ(w[0], 0xbdbf2f8492c64802ull);
  EXPECT_EQ(w[1], 0x4df1013df62bb397ull);
  // Any window of the stream is the same as the matching part of a longer read.
  std::vector<uint64_t> all(100), part(13);
  s.words(all.data(), all.size(), 0);
  s.words(part.data(), part.size(), 37);
  for (size_t i = 0; i < part.size(); ++i) EXPECT_EQ(part[i], all[37 + i]);
}

TEST(SecretStream, PurposesStepsAndSecretsGiveDifferentStreams) {
  const RunSecret a = key_of("01"), b = key_of("02");
  uint64_t x, y, z, v;
  SecretStream(a, SecretPurpose::gaussian_noise, 5).words(&x, 1, 0);
  SecretStream(a, SecretPurpose::lot_membership, 5).words(&y, 1, 0);
  SecretStream(a, SecretPurpose::gaussian_noise, 6).words(&z, 1, 0);
  SecretStream(b, SecretPurpose::gaussian_noise, 5).words(&v, 1, 0);
  EXPECT_NE(x, y);
  EXPECT_NE(x, z);
  EXPECT_NE(x, v);
}

TEST(RunSecret, HexRoundTripAndClearErrorsThatNeverEchoTheText) {
  const RunSecret g = RunSecret::generate();
  EXPECT_EQ(RunSecret::from_hex(g.to_hex() + "\n"), g);
  EXPECT_EQ(RunSecret::from_hex("  " + g.to_hex()), g);
  EXPECT_FALSE(RunSecret::generate() == g);  // 2^-256 chance of a false failure
  const std::string short_key = g.to_hex().substr(0, 63);
  try {
    RunSecret::from_hex(short_key, "k.key");
    FAIL() << "a 63-digit secret was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("64 hex digits"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find(short_key), std::string::npos) << "the error echoes the key";
  }
  std::string bad = g.to_hex();
  bad[10] = 'g';
  EXPECT_THROW(RunSecret::from_hex(bad), std::exception);
}

TEST(RunSecret, FingerprintIdentifiesWithoutRevealing) {
  const RunSecret a = key_of("ab"), b = key_of("ac");
  EXPECT_NE(a.fingerprint(), b.fingerprint());
  EXPECT_EQ(a.fingerprint().size(), 32u);
  EXPECT_EQ(a.to_hex().find(a.fingerprint()), std::string::npos);
}

TEST(PoissonLot, SizesFollowBinomialMeanAndVariance) {
  const RunSecret key = key_of("5a");
  const int64_t n = 1020;
  const double q = 0.251;
  const int steps = 2000;
  double sum = 0, sum2 = 0;
  for (int t = 0; t < steps; ++t) {
    double k = static_cast<double>(poisson_lot(key, t, n, q).size());
    sum += k;
    sum2 += k * k;
  }
  double mean = sum / steps, var = sum2 / steps - mean * mean;
  double mu = n * q, sigma2 = n * q * (1 - q);
  // Mean: 99.9% bound (3.29 standard errors); variance: 99.9% bound of the sample variance.
  EXPECT_NEAR(mean, mu, 3.29 * std::sqrt(sigma2 / steps));
  EXPECT_NEAR(var, sigma2, 3.29 * sigma2 * std::sqrt(2.0 / (steps - 1)));
}

TEST(PoissonLot, KeyedBySecretAndStepIndependentOfN) {
  const RunSecret key = key_of("07");
  auto a = poisson_lot(key, 17, 5000, 0.1);
  EXPECT_NE(a, poisson_lot(key, 18, 5000, 0.1));               // other step
  EXPECT_NE(a, poisson_lot(key_of("08"), 17, 5000, 0.1));      // other secret: the coins are the secret's
  // Membership of example i does not depend on the examples after it (batches of 4096 words).
  auto c = poisson_lot(key, 17, 4100, 0.1);
  std::vector<int64_t> prefix;
  for (auto i : a)
    if (i < 4100) prefix.push_back(i);
  EXPECT_EQ(c, prefix);
  EXPECT_THROW(poisson_lot(key, 1, 10, 0.0), std::exception);
}

TEST(PoissonLot, EmptyLotsHappenAndAreValid) {
  const RunSecret key = key_of("03");
  int empty = 0;
  for (int t = 0; t < 200; ++t) empty += poisson_lot(key, t, 5, 0.1).empty();
  // P(empty) = 0.9^5 = 0.59: 118 expected of 200, sd 7.
  EXPECT_GT(empty, 90);
  EXPECT_LT(empty, 146);
}

TEST(SecureNoise, MomentsAndTailsOfNSigmaC) {
  const RunSecret key = key_of("c3");
  const double std = 1.3 * 0.7;
  const uint64_t n = 1 << 21;
  std::vector<float> z(n);
  secure_gaussian_noise(z.data(), n, std, key, 3, 2);
  double s1 = 0, s2 = 0, s4 = 0;
  uint64_t beyond2 = 0, beyond3 = 0;
  for (float v : z) {
    const double x = v / std;
    s1 += x;
    s2 += x * x;
    s4 += x * x * x * x;
    beyond2 += std::abs(x) > 2;
    beyond3 += std::abs(x) > 3;
  }
  const double N = static_cast<double>(n);
  const double mean = s1 / N, var = s2 / N - mean * mean, kurt = s4 / N;
  // 99.9% bounds (3.29 standard errors) of the standard normal's moments and tail masses.
  EXPECT_NEAR(mean, 0.0, 3.29 / std::sqrt(N));
  EXPECT_NEAR(var, 1.0, 3.29 * std::sqrt(2.0 / N));
  EXPECT_NEAR(kurt, 3.0, 3.29 * std::sqrt(96.0 / N));  // Var(x^4) = 105 - 9 = 96
  const double p2 = 0.0455002638963584, p3 = 0.00269979606326019;
  EXPECT_NEAR(beyond2 / N, p2, 3.29 * std::sqrt(p2 * (1 - p2) / N));
  EXPECT_NEAR(beyond3 / N, p3, 3.29 * std::sqrt(p3 * (1 - p3) / N));
}

TEST(BoxMuller, DeterministicMathAgreesWithLibm) {
  // Random words plus the edges: u = 0 and u -> 1 for the radius, every octant boundary for the
  // angle.
  std::mt19937_64 gen(5);
  std::vector<uint64_t> words{0, ~uint64_t{0}, uint64_t{1} << 12, ~uint64_t{0} << 12};
  for (uint64_t o = 0; o < 8; ++o) {
    words.push_back(o << 61);
    words.push_back((o << 61) | ((uint64_t{1} << 61) - 1));
  }
  for (int i = 0; i < 200000; ++i) words.push_back(gen());
  double worst_log = 0, worst_cs = 0;
  for (uint64_t w : words) {
    const double x = box_muller::unit_interval_open_closed(w);
    ASSERT_GT(x, 0.0);
    ASSERT_LE(x, 1.0);
    const double ref = std::log(x);
    if (ref != 0) worst_log = std::max(worst_log, std::abs(box_muller::log_positive(x) - ref) / std::abs(ref));
    else EXPECT_EQ(box_muller::log_positive(x), 0.0);
    const double a = 6.283185307179586476925286766559 * (static_cast<double>(w >> 12) * 0x1.0p-52);
    worst_cs = std::max(worst_cs, std::abs(box_muller::cos_plus_sin_turn(w) - (std::cos(a) + std::sin(a))));
  }
  // libm itself is within 1 ulp; 2 pi u is rounded before libm sees it (<= 8 ulp of 2 pi).
  EXPECT_LT(worst_log, 4.5e-16);
  EXPECT_LT(worst_cs, 4e-15);
}

TEST(SecureNoise, VectorisedSamplerEqualsTheScalarFormulaBitForBit) {
  // The library's clones (AVX2 where the CPU has it) against the same formula evaluated here
  // scalar: the noise is the same bits on any x86-64, so a resume on another node replays it.
  const RunSecret key = key_of("4d");
  const uint64_t first = 1001, n = 5000;
  std::vector<float> lib(n);
  secure_gaussian_fill(lib.data(), first, n, 0.37, key, 9);
  std::vector<uint64_t> w(4 * (n + 1));
  SecretStream(key, SecretPurpose::gaussian_noise, 9).words(w.data(), w.size(), 4 * first);
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t* q = &w[4 * i];
    const double r1 = std::sqrt(-2.0 * box_muller::log_positive(box_muller::unit_interval_open_closed(q[0])));
    const double r2 = std::sqrt(-2.0 * box_muller::log_positive(box_muller::unit_interval_open_closed(q[2])));
    const double z = r1 * box_muller::cos_plus_sin_turn(q[1]) + r2 * box_muller::cos_plus_sin_turn(q[3]);
    const float expected = static_cast<float>(0.5 * 0.37 * z);
    ASSERT_EQ(0, std::memcmp(&expected, &lib[i], sizeof(float))) << "coordinate " << first + i;
  }
}

TEST(SecureNoise, SameValuesForAnySplitThreadCountAndPrefetch) {
  const RunSecret key = key_of("9e");
  const uint64_t n = 300001;  // odd: chunks that start inside a 64-byte block
  std::vector<float> one(n), three(n), part(777);
  secure_gaussian_noise(one.data(), n, 0.5, key, 11, 1);
  secure_gaussian_noise(three.data(), n, 0.5, key, 11, 3);
  EXPECT_EQ(0, std::memcmp(one.data(), three.data(), n * sizeof(float)));
  secure_gaussian_fill(part.data(), 12345, part.size(), 0.5, key, 11);
  EXPECT_EQ(0, std::memcmp(part.data(), one.data() + 12345, part.size() * sizeof(float)));
  std::vector<float> other(n);
  secure_gaussian_noise(other.data(), n, 0.5, key, 12, 1);
  EXPECT_NE(0, std::memcmp(one.data(), other.data(), n * sizeof(float)));

  NoisePrefetcher pf(key, n, 0.5, 2);
  pf.prefetch(11);
  std::vector<float> ahead = pf.take(11);
  ASSERT_EQ(ahead.size(), n);
  EXPECT_EQ(0, std::memcmp(one.data(), ahead.data(), n * sizeof(float)));
  pf.prefetch(13);  // asked for 13, the step needs 12: drawn for 12, never the wrong step's noise
  std::vector<float> wrong = pf.take(12);
  EXPECT_EQ(0, std::memcmp(other.data(), wrong.data(), n * sizeof(float)));
}

}  // namespace
}  // namespace vardp::dp
