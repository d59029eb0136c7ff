// The mechanism's coins (ARCHITECTURE invariant 6, "two kinds of keys"): the Gaussian noise and
// the Poisson lot membership of DP-SGD. DP holds only if the adversary cannot regenerate them,
// so they never come from train.seed (which is public: it is in config.toml and every output)
// but from a 256-bit run secret drawn from the operating system's CSPRNG.
//
// Generator: ChaCha20 (RFC 8439, IETF variant) from libsodium, used as a counter-based stream.
// The key is the run secret; the 96-bit nonce is (purpose, step); the 32-bit block counter
// indexes 64-byte blocks inside one (purpose, step) stream. So every coin is a pure function of
// (secret, purpose, step, position): the same on any rank, for any micro-batch split, and again
// when a step is replayed after a resume (invariant 4). ChaCha20 is a PRF under its key: without
// the secret, the streams are indistinguishable from uniform, whatever else is published.
// Why libsodium: a small, well-kept Debian library whose ChaCha20 has an explicit block-counter
// API (no hand-rolled cipher) and whose randombytes uses getrandom(2).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace vardp::dp {

// Purposes of the secret streams (the nonce's first word). Append; never renumber.
enum class SecretPurpose : uint32_t {
  lot_membership = 1,  // Poisson lot: one 64-bit word per example
  gaussian_noise = 2,  // DP-SGD noise: 32 bytes per coordinate
  test = 100,
};

// 256-bit run secret. Lives only in private run state (<run>/secret.key or dp.secret_file).
class RunSecret {
 public:
  static constexpr size_t kBytes = 32;
  // A fresh secret from the OS CSPRNG (getrandom(2), blocking until the pool is initialised).
  static RunSecret generate();
  // From 64 hex digits (surrounding whitespace ignored); throws vardp::Error otherwise.
  static RunSecret from_hex(const std::string& text, const std::string& context = {});
  static RunSecret from_bytes(const std::array<uint8_t, kBytes>& bytes) {
    RunSecret s;
    s.key_ = bytes;
    return s;
  }
  std::string to_hex() const;
  // A public fingerprint (BLAKE2b of a fixed label keyed by the secret, 16 bytes hex) that identifies the
  // secret in checkpoints without revealing it: a resume can check that secret.key is the one
  // its steps were drawn with.
  std::string fingerprint() const;
  const std::array<uint8_t, kBytes>& bytes() const { return key_; }
  bool operator==(const RunSecret& o) const { return key_ == o.key_; }

 private:
  std::array<uint8_t, kBytes> key_{};
};

// One (secret, purpose, step) keystream, read at any block position.
class SecretStream {
 public:
  static constexpr size_t kBlockBytes = 64;
  SecretStream(const RunSecret& secret, SecretPurpose purpose, uint64_t step);
  // Keystream bytes [first_block * 64, first_block * 64 + n) into out. Throws past 2^32 blocks.
  void fill(uint8_t* out, size_t n, uint64_t first_block) const;
  // 64-bit little-endian words [first_word, first_word + count) of the keystream.
  void words(uint64_t* out, size_t count, uint64_t first_word) const;

 private:
  std::array<uint8_t, 12> nonce_{};
  const RunSecret* secret_;
};

// A uniform double in [0, 1) from the top 53 bits of a word.
inline double uniform53(uint64_t w) { return static_cast<double>(w >> 11) * 0x1.0p-53; }

}  // namespace vardp::dp
