// Read-only zip archives (the container of PyTorch's `torch.save` files).
//
// Built on libzip rather than a hand-written reader: it is well maintained, handles zip64
// (checkpoints over 4 GB), checks local against central headers (ZIP_CHECKCONS) and verifies
// each entry's CRC-32 when it is read to the end, so a corrupted file fails loudly.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

struct zip;  // libzip's archive handle (zip_t); zip.h stays out of this header

namespace vardp::io {

struct ZipEntry {
  std::string name;
  uint64_t index = 0;            // libzip's entry index
  uint64_t size = 0;             // uncompressed size in bytes
  uint64_t compressed_size = 0;
  int32_t method = 0;            // 0: stored, 8: deflate, ...
};

class ZipArchive {
 public:
  // Opens and indexes the archive; throws vardp::Error naming the file on any inconsistency
  // (not a zip, truncated, duplicate entry names, implausible sizes).
  explicit ZipArchive(const std::string& path);
  ~ZipArchive();
  ZipArchive(ZipArchive&& other) noexcept;
  ZipArchive& operator=(ZipArchive&& other) noexcept;
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }
  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;  // nullptr if absent
  const ZipEntry& at(const std::string& name) const;    // throws if absent

  // Whole entry as bytes; refuses entries larger than max_size (protects small records such as
  // data.pkl from absurd sizes in a corrupted directory).
  std::string read(const ZipEntry& entry, uint64_t max_size) const;
  // Reads exactly entry.size bytes into dst (nbytes must equal entry.size), then reads to the end
  // so that libzip verifies the CRC.
  void read_into(const ZipEntry& entry, void* dst, uint64_t nbytes) const;

 private:
  std::string path_;
  uint64_t file_size_ = 0;
  ::zip* za_ = nullptr;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> by_name_;
};

}  // namespace vardp::io
