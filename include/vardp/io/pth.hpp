// PyTorch `torch.save` files (zip format, PyTorch >= 1.6) holding a state dict, as published
// for VAR (`torch.save(module.state_dict())`). Pure C++: the tensors' bytes are read by the
// caller into memory it owns (see state_dict.hpp for the LibTorch side).
//
// Layout of such a file (all entries stored uncompressed by torch):
//   <prefix>/data.pkl            pickle of the (Ordered)dict, tensors as persistent ids
//   <prefix>/data/<key>          raw bytes of storage <key>
//   <prefix>/version             serialization version ("3\n"); torch 2.x may add
//   <prefix>/byteorder           "little" or "big", and <prefix>/.data/serialization_id
// <prefix> is the file's stem (or "archive"); it is taken from the data.pkl entry.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "vardp/io/pickle.hpp"
#include "vardp/io/zip_archive.hpp"

namespace vardp::io {

struct PthStorage {
  std::string key;
  DType dtype = DType::float32;
  int64_t numel = 0;
  uint64_t nbytes = 0;
  const ZipEntry* entry = nullptr;
  std::vector<size_t> users;  // indices into PthReader::tensors(), file order
};

class PthReader {
 public:
  // Opens the archive, interprets data.pkl with the restricted pickle reader and validates every
  // tensor against its storage record (sizes, strides and offsets within bounds, overflow-safe).
  // Storage bytes are not read yet. Throws vardp::Error naming the file and what is wrong.
  explicit PthReader(const std::string& path);

  const std::string& path() const { return zip_.path(); }
  const std::string& prefix() const { return prefix_; }
  const PickledStateDict& pickled() const { return pickled_; }
  const std::vector<std::pair<std::string, TensorRecord>>& tensors() const {
    return pickled_.entries;
  }
  const PthStorage& storage(const std::string& key) const;
  const std::vector<std::string>& storage_order() const { return storage_order_; }  // first use
  bool big_endian() const { return big_endian_; }
  int64_t version() const { return version_; }  // 0 when the file has no version record

  // Reads storage `key` whole into dst (nbytes must equal its size), verifies the CRC and
  // converts to the machine's (little-endian) byte order.
  void read_storage(const std::string& key, void* dst, uint64_t nbytes) const;

 private:
  ZipArchive zip_;
  std::string prefix_;
  PickledStateDict pickled_;
  std::unordered_map<std::string, PthStorage> storages_;
  std::vector<std::string> storage_order_;
  bool big_endian_ = false;
  int64_t version_ = 0;
};

// Number of elements of a shape, throwing on negative sizes or int64 overflow.
int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& context);
// True if `r` is a C-contiguous view (dims of size 1 may have any stride).
bool is_contiguous_view(const TensorRecord& r);

}  // namespace vardp::io
