// IDX files (the MNIST / Fashion-MNIST container): big-endian magic 0x0000TTNN (TT = 0x08:
// unsigned bytes, NN = number of dimensions), NN big-endian uint32 sizes, then the data.
// Read through zlib, so both the gzipped files Debian ships and unpacked ones work.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vardp::data {

struct IdxArray {
  std::vector<uint32_t> dims;
  std::vector<uint8_t> data;
};

IdxArray read_idx_ubyte(const std::string& path);
// Writes an uncompressed (or, for a name ending in .gz, gzipped) IDX ubyte file (tests).
void write_idx_ubyte(const std::string& path, const IdxArray& array);

}  // namespace vardp::data
