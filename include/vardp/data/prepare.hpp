// `vardp prepare`: a dataset in its official layout -> OUT/train.h5 and OUT/test.h5
// (docs/formats/dataset.md). Ranks split the decoding; rank 0 writes, atomically.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "vardp/data/sources.hpp"
#include "vardp/dist/comm.hpp"

namespace vardp::data {

struct PrepareOptions {
  std::string format;
  std::string root;              // empty: the format's default (fashion_mnist: Debian package)
  std::string out_dir;
  int image_size = 256;          // model resolution R the file is meant for
  int resolution = 0;            // stored side S; 0: round(1.125 * image_size) (VAR's mid_reso)
  bool skip_bad = false;         // skip (and count) unreadable images and bad labels
  std::vector<int64_t> classes;  // original class indices to keep, new label = position
  int64_t per_class_train = 0;   // keep at most this many per class (0: all)
  int64_t per_class_test = 0;
  uint64_t subset_seed = 0;
  SourceOptions source;
  std::vector<std::string> splits;  // subset of {"train", "test"}; empty: every split present
  int threads = 0;               // decoding threads per rank; 0: cores / ranks on the node
  int block = 256;               // images decoded per exchange between ranks
  int compression = 0;           // gzip level of /images (0: none)
  std::string command_line;      // recorded in the files
};

struct SplitReport {
  std::string name;
  std::string path;
  int64_t written = 0;
  int64_t skipped = 0;
  std::vector<BadItem> skipped_items;  // file and reason of each skipped item
  double seconds = 0.0;
  std::string sha256;
};

struct PrepareReport {
  std::string format;
  int64_t num_classes = 0;
  int resolution = 0;
  std::vector<SplitReport> splits;
};

// Collective over `comm`. Errors that every rank sees (bad options, annotation files, a corrupt
// image found by any rank without skip_bad, a failed write) are thrown as CollectiveError on
// every rank; no output file is left behind for a failed split.
PrepareReport prepare_dataset(const PrepareOptions& options, dist::Comm& comm);

// The options as TOML (stored as the files' config_toml).
std::string prepare_options_toml(const PrepareOptions& options);

}  // namespace vardp::data
