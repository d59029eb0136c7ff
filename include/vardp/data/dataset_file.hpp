// The dataset file written by `vardp prepare` (format "vardp.dataset", docs/formats/dataset.md):
// /images uint8 (N, S, S, 3), /labels int64 (N), /source_ids int64 (N), root attributes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "vardp/io/h5.hpp"

namespace vardp::data {

inline constexpr const char* kDatasetFormat = "vardp.dataset";
inline constexpr int64_t kDatasetFormatVersion = 1;

// Appends rows to a chunked, extendible uint8 dataset of shape (N, row_shape...). Chunks hold
// whole rows (about 64 KiB or one row), so a random row read touches one chunk.
class RowAppender {
 public:
  RowAppender(hid_t loc, const std::string& path, const std::vector<hsize_t>& row_shape,
              int compression = 0);
  void append(const uint8_t* rows, hsize_t n);
  hsize_t rows() const { return rows_; }
  size_t row_bytes() const { return row_bytes_; }

 private:
  io::H5Handle dset_;
  std::string path_;
  std::vector<hsize_t> row_shape_;
  size_t row_bytes_ = 1;
  hsize_t rows_ = 0;
};

struct DatasetInfo {
  std::string path;
  int64_t format_version = 0;
  int64_t num_examples = 0;
  int64_t resolution = 0;   // stored side S
  int64_t image_size = 0;   // model resolution the file was prepared for
  int64_t num_classes = 0;
  std::vector<std::string> class_names;
  std::vector<int64_t> original_class_ids;
  std::string source;       // format name, e.g. "flowers102"
  std::string split;        // "train" | "test"
  std::string images_sha256;
};

// Opens, checks the format and shape, reads the attributes. Throws Error naming the file.
DatasetInfo read_dataset_info(const std::string& path);
DatasetInfo read_dataset_info(hid_t file, const std::string& path);

// SHA-256 of /images recomputed from the file in blocks of rows (bounded memory).
std::string compute_images_sha256(const std::string& path);

}  // namespace vardp::data
