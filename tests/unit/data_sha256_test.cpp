// SHA-256 against the FIPS 180-2 / NIST example vectors.
#include <gtest/gtest.h>

#include <string>

#include "vardp/data/sha256.hpp"

namespace vardp::data {
namespace {

TEST(DataSha256, NistVectors) {
  EXPECT_EQ(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(sha256_hex(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  EXPECT_EQ(sha256_hex(million.data(), million.size()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(DataSha256, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += char(i * 31 + 7);
  const std::string expected = sha256_hex(data.data(), data.size());
  for (size_t piece : {1u, 3u, 63u, 64u, 65u, 200u}) {
    Sha256 h;
    for (size_t off = 0; off < data.size(); off += piece)
      h.update(data.data() + off, std::min(piece, data.size() - off));
    EXPECT_EQ(h.hex_digest(), expected) << "piece size " << piece;
  }
}

}  // namespace
}  // namespace vardp::data
