// Features of a reference split (the test split runs are evaluated against), computed once per
// (images, feature network, view size) and reused by every evaluation that needs them. The cache
// file (format "vardp.eval.features", version 1; docs/formats/eval.md) holds /features and, for
// Inception, /spatial_features, so it is also a valid `vardp eval` input. Its name carries a
// digest of the key; its attributes repeat the key, and a file whose attributes do not match is
// ignored (recomputed), never trusted.
#pragma once
#include <optional>
#include <string>

#include "vardp/eval/image_features.hpp"

namespace vardp::eval {

inline constexpr const char* kFeaturesFormat = "vardp.eval.features";
inline constexpr int64_t kFeaturesFormatVersion = 1;

struct ReferenceKey {
  // "sha256:<images_sha256 attribute>" for dataset files; otherwise
  // "file:<absolute path>:<size>:<mtime ns>" (any change of the file invalidates the cache).
  std::string images_id;
  std::string network_kind;    // classifier | inception
  std::string network_sha256;  // SHA-256 of the network file
  int64_t view_size = 0;
  // First 16 hex digits of the SHA-256 of all fields: the file-name part of the key.
  std::string digest() const;
};

ReferenceKey reference_key(const ImageSetInfo& set, const std::string& network_kind, const std::string& network_sha256);

// "<dataset file name>.ref-<digest>.h5" (no directory).
std::string reference_cache_name(const std::string& dataset_path, const ReferenceKey& key);

// The cached features if `path` exists and was written for `key`; nullopt otherwise (a file
// for another key, or one that cannot be read, is reported with a warning and ignored).
std::optional<ImageFeatures> read_reference_cache(const std::string& path, const ReferenceKey& key);

// Writes the features atomically with the key as attributes; `source` is the dataset path.
void write_reference_cache(const std::string& path, const ImageFeatures& features, const ReferenceKey& key,
                           const std::string& source);

}  // namespace vardp::eval
