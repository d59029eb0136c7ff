// HDF5 inputs and reference-statistics files of `vardp eval` (docs/formats/eval.md).
//
// An input file holds, at its root, either raw features or precomputed statistics:
//   /features          float32 (N, d)     pool features, one sample per row
//   /mu, /sigma        float64 (d), (d, d) statistics (ddof = 1); /count int64 scalar optional
// and optionally the same for the spatial features behind sFID:
//   /spatial_features, or /spatial_mu + /spatial_sigma (+ /spatial_count)
// Files of images (/images) need a feature network first.
#pragma once
#include <optional>
#include <string>

#include "vardp/eval/stats.hpp"
#include "vardp/io/h5.hpp"

namespace vardp::eval {

inline constexpr const char* kStatsFormat = "vardp.eval.stats";
inline constexpr int64_t kStatsFormatVersion = 1;

// One kind of features (pool or spatial) of one input: raw rows and/or statistics.
struct FeatureSet {
  std::optional<FeatureMatrix> features;
  std::optional<FeatureStats> stats;  // from the file, or computed from `features` by the caller
  bool present() const { return features.has_value() || stats.has_value(); }
};

struct EvalInput {
  std::string path;
  FeatureSet pool;     // "" prefix: /features or /mu, /sigma
  FeatureSet spatial;  // "spatial_" prefix
};

// Reads an input file. With load_features = false, raw features are not loaded into memory; their
// statistics are accumulated from row batches instead (enough for FID / sFID). Statistics stored
// in the file are used only where the file has no raw features of that kind.
EvalInput read_eval_input(const std::string& path, bool load_features,
                          int64_t batch_rows = 4096);

// Whole float32 (N, d) dataset into a matrix, read in row batches.
FeatureMatrix read_features(hid_t file, const std::string& dataset, const std::string& path,
                            int64_t batch_rows = 4096);
// Statistics of a float32 (N, d) dataset, streamed in row batches.
FeatureStats stats_from_dataset(hid_t file, const std::string& dataset, const std::string& path,
                                int64_t batch_rows = 4096);
// /<prefix>mu, /<prefix>sigma and optional /<prefix>count.
FeatureStats read_stats(hid_t file, const std::string& prefix, const std::string& path);
void write_stats(hid_t file, const std::string& prefix, const FeatureStats& s);

// A reference-statistics file (format vardp.eval.stats): pool statistics and optional spatial
// statistics, written atomically with provenance. `source` names the input they came from.
void write_stats_file(const std::string& path, const FeatureStats& pool,
                      const std::optional<FeatureStats>& spatial, const std::string& source);

}  // namespace vardp::eval
