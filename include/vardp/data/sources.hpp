// The supported source layouts. Each lister reads the official annotation files of one dataset
// and returns, per split, the list of (image, label) items to prepare. Listing reads only small
// annotation files, so every rank does it identically; images are decoded later, in parallel.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "vardp/data/image.hpp"

namespace vardp::data {

struct SourceItem {
  std::string path;      // image file; for in-memory sources a display name
  int64_t label = -1;    // 0-based class index in the source's class list
  int64_t source_id = 0; // the dataset's own id (image number, line number, IDX index)
  int32_t blob = 0;      // in-memory sources: which loaded array holds the item
};

// An item the lister could not accept (label out of range, unknown class); with --skip-bad it
// is counted and reported, otherwise prepare fails with `reason`.
struct BadItem {
  std::string path;
  std::string reason;
};

struct SourceSplit {
  std::string name;  // "train" | "test"
  std::vector<SourceItem> items;
  std::vector<BadItem> bad;
};

struct SourceOptions {
  std::string flowers_valid = "none";  // flowers102: where valid ids go: none | train | test
  std::string fmnist_fit = "pad";      // fashion_mnist 28 -> 32: pad | resize
  int fmnist_size = 32;                // fashion_mnist canvas before the stored-size resize
};

struct SourceDataset {
  std::string format;                    // e.g. "flowers102"
  std::string root;
  std::vector<std::string> class_names;  // index = label
  std::vector<SourceSplit> splits;       // train first, then test when present
  std::string split_rule;                // one line: where the split comes from
  // Loads one item as 8-bit RGB. Default (empty): decode_image_file(item.path).
  std::function<Image(const SourceItem&)> loader;
};

// Supported names: flowers102, cub200, food101, stanford_cars, oxford_pets, imagefolder,
// fashion_mnist.
const std::vector<std::string>& source_formats();
SourceDataset list_source(const std::string& format, const std::string& root,
                          const SourceOptions& options = {});

// One lister per format (src/data/source_<format>.cpp).
SourceDataset list_flowers102(const std::string& root, const SourceOptions& options);
SourceDataset list_cub200(const std::string& root);
SourceDataset list_food101(const std::string& root);
SourceDataset list_stanford_cars(const std::string& root);
SourceDataset list_oxford_pets(const std::string& root);
SourceDataset list_imagefolder(const std::string& root);
SourceDataset list_fashion_mnist(const std::string& root, const SourceOptions& options);

// Default root of fashion_mnist: Debian's dataset-fashion-mnist package.
inline constexpr const char* kFashionMnistDebianRoot = "/usr/share/datasets/fashion-mnist";

// Keeps only `classes` (original indices, in the given order: new label k = classes[k]) and
// remaps labels to 0..K-1; the class names follow. Throws UsageError for an unknown class.
void keep_classes(SourceDataset* ds, const std::vector<int64_t>& classes);

// Keeps at most `per_class` items of each class in split `split` (0: all). Which ones is a
// seeded draw (Philox stream, purpose `shuffle`, keyed by (seed, class)), so it is reproducible
// and independent of the order classes appear in; kept items stay in source order.
void subsample_per_class(SourceSplit* split, int64_t num_classes, int64_t per_class, uint64_t seed);

// Small text helpers for annotation files.
std::vector<std::string> read_lines(const std::string& path);  // without '\r', skips blank lines
std::vector<std::string> split_ws(const std::string& line);
int64_t parse_int(const std::string& token, const std::string& context);
std::string join_path(const std::string& a, const std::string& b);

}  // namespace vardp::data
