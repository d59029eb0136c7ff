#include "vardp/dp/secret_coins.hpp"

#include <sodium.h>
#include <sys/random.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <vector>

#include "vardp/util/error.hpp"

namespace vardp::dp {
namespace {

void ensure_sodium() {
  static const int rc = sodium_init();  // thread-safe since C++11 statics; idempotent
  if (rc < 0) throw Error("libsodium could not be initialised", "dp");
}

std::string to_hex_digits(const uint8_t* bytes, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(digits[bytes[i] >> 4]);
    out.push_back(digits[bytes[i] & 15]);
  }
  return out;
}

void put_le(uint8_t* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace

RunSecret RunSecret::generate() {
  RunSecret s;
  size_t got = 0;
  while (got < kBytes) {
    // getrandom(2) without GRND_NONBLOCK blocks until the kernel's CSPRNG is seeded; it never
    // returns a short read for <= 256 bytes once seeded, but EINTR is retried.
    const ssize_t n = ::getrandom(s.key_.data() + got, kBytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(str("getrandom failed: ", std::strerror(errno)), "dp: run secret");
    }
    got += static_cast<size_t>(n);
  }
  return s;
}

RunSecret RunSecret::from_hex(const std::string& text, const std::string& context) {
  size_t b = 0, e = text.size();
  while (b < e && std::isspace(static_cast<unsigned char>(text[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(text[e - 1]))) --e;
  const std::string hex = text.substr(b, e - b);
  // The message never echoes the text: it may be a (mistyped) secret.
  if (hex.size() != 2 * kBytes)
    throw Error(str("a run secret is ", 2 * kBytes, " hex digits (256 bits); found ", hex.size(), " characters"),
                context);
  RunSecret s;
  for (size_t i = 0; i < kBytes; ++i) {
    int v = 0;
    for (int j = 0; j < 2; ++j) {
      const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(hex[2 * i + static_cast<size_t>(j)])));
      int d;
      if (c >= '0' && c <= '9')
        d = c - '0';
      else if (c >= 'a' && c <= 'f')
        d = c - 'a' + 10;
      else
        throw Error("a run secret must consist of hex digits only", context);
      v = v * 16 + d;
    }
    s.key_[i] = static_cast<uint8_t>(v);
  }
  return s;
}

std::string RunSecret::to_hex() const { return to_hex_digits(key_.data(), key_.size()); }

std::string RunSecret::fingerprint() const {
  ensure_sodium();
  static const char kLabel[] = "vardp run-secret fingerprint v1";
  std::array<uint8_t, crypto_generichash_BYTES_MIN> h{};  // 16 bytes
  crypto_generichash(h.data(), h.size(), reinterpret_cast<const unsigned char*>(kLabel), sizeof(kLabel) - 1,
                     key_.data(), key_.size());
  return to_hex_digits(h.data(), h.size());
}

SecretStream::SecretStream(const RunSecret& secret, SecretPurpose purpose, uint64_t step) : secret_(&secret) {
  static_assert(crypto_stream_chacha20_ietf_NONCEBYTES == 12, "ChaCha20-IETF nonce is 96 bits");
  static_assert(crypto_stream_chacha20_ietf_KEYBYTES == RunSecret::kBytes, "ChaCha20 key is 256 bits");
  ensure_sodium();
  put_le(nonce_.data(), static_cast<uint32_t>(purpose), 4);
  put_le(nonce_.data() + 4, step, 8);
}

void SecretStream::fill(uint8_t* out, size_t n, uint64_t first_block) const {
  const uint64_t blocks = (static_cast<uint64_t>(n) + kBlockBytes - 1) / kBlockBytes;
  // The IETF block counter is 32 bits: 256 GiB per (purpose, step) stream.
  if (first_block + blocks > (uint64_t{1} << 32))
    throw Error(str("secret stream exhausted: blocks up to ", first_block + blocks, " requested, 2^32 exist"), "dp");
  std::memset(out, 0, n);
  crypto_stream_chacha20_ietf_xor_ic(out, out, n, nonce_.data(), static_cast<uint32_t>(first_block),
                                     secret_->bytes().data());
}

void SecretStream::words(uint64_t* out, size_t count, uint64_t first_word) const {
  // Words are read whole blocks at a time (8 words per block).
  const uint64_t first_block = first_word / 8, skip = first_word % 8;
  std::vector<uint8_t> buf((skip + count) * 8);
  fill(buf.data(), buf.size(), first_block);
  for (size_t i = 0; i < count; ++i) {
    uint64_t w = 0;
    for (int b = 7; b >= 0; --b) w = (w << 8) | buf[(skip + i) * 8 + static_cast<size_t>(b)];
    out[i] = w;
  }
}

}  // namespace vardp::dp
