// SHA-256 (FIPS 180-4) for the `images_sha256` attribute of dataset files. A small own
// implementation: OpenSSL, nettle and libgcrypt headers are installed on the development image
// but none of them is linked into vardp_core, and a checksum does not justify a new dependency.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace vardp::data {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::array<uint8_t, 32> digest();  // finalises; the object must not be updated afterwards
  std::string hex_digest();          // lower-case hex of digest()

 private:
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
  bool finished_ = false;
};

std::string sha256_hex(const void* data, size_t size);

}  // namespace vardp::data
