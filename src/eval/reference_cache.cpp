#include "vardp/eval/reference_cache.hpp"

#include <filesystem>

#include "vardp/data/sha256.hpp"
#include "vardp/eval/stats_io.hpp"
#include "vardp/io/atomic_file.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::eval {

namespace fs = std::filesystem;

std::string ReferenceKey::digest() const {
  const std::string text = str("images_id=", images_id, "\nnetwork_kind=", network_kind,
                               "\nnetwork_sha256=", network_sha256, "\nview_size=", view_size, "\n");
  return data::sha256_hex(text.data(), text.size()).substr(0, 16);
}

ReferenceKey reference_key(const ImageSetInfo& set, const std::string& network_kind,
                           const std::string& network_sha256) {
  ReferenceKey k;
  if (!set.images_sha256.empty()) {
    k.images_id = "sha256:" + set.images_sha256;
  } else {
    std::error_code ec;
    const fs::path p = fs::absolute(set.path, ec);
    const auto size = fs::file_size(set.path, ec);
    const auto mtime = fs::last_write_time(set.path, ec).time_since_epoch();
    k.images_id =
        str("file:", p.string(), ":", size, ":", std::chrono::duration_cast<std::chrono::nanoseconds>(mtime).count());
  }
  k.network_kind = network_kind;
  k.network_sha256 = network_sha256;
  k.view_size = set.view_size;
  return k;
}

std::string reference_cache_name(const std::string& dataset_path, const ReferenceKey& key) {
  return fs::path(dataset_path).filename().string() + ".ref-" + key.digest() + ".h5";
}

std::optional<ImageFeatures> read_reference_cache(const std::string& path, const ReferenceKey& key) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  try {
    auto file = io::H5File::open(path);
    const hid_t f = file.id();
    io::check_format(f, path, kFeaturesFormat, kFeaturesFormatVersion);
    if (io::h5_read_attr_string(f, "images_id") != key.images_id ||
        io::h5_read_attr_string(f, "feature_net") != key.network_kind ||
        io::h5_read_attr_string(f, "feature_net_sha256") != key.network_sha256 ||
        io::h5_read_attr_int(f, "view_size") != key.view_size) {
      log::warn("eval: ignoring reference cache ", path, ": written for other images or another feature network");
      return std::nullopt;
    }
    ImageFeatures out;
    out.pool = read_features(f, "/features", path);
    if (io::h5_exists(f, "/spatial_features")) out.spatial = read_features(f, "/spatial_features", path);
    return out;
  } catch (const std::exception& e) {
    log::warn("eval: ignoring unreadable reference cache ", path, ": ", e.what());
    return std::nullopt;
  }
}

void write_reference_cache(const std::string& path, const ImageFeatures& features, const ReferenceKey& key,
                           const std::string& source) {
  io::AtomicH5File out(path);
  const hid_t f = out.id();
  io::Provenance prov;
  prov.format = kFeaturesFormat;
  prov.format_version = kFeaturesFormatVersion;
  io::write_provenance(f, prov);
  io::h5_write_attr(f, "source", source);
  io::h5_write_attr(f, "images_id", key.images_id);
  io::h5_write_attr(f, "feature_net", key.network_kind);
  io::h5_write_attr(f, "feature_net_sha256", key.network_sha256);
  io::h5_write_attr(f, "view_size", key.view_size);
  io::h5_write_attr(f, "cache_key", key.digest());
  const auto write = [&](const std::string& name, const FeatureMatrix& m) {
    io::h5_write<float>(f, name, m.data(), {static_cast<hsize_t>(m.rows()), static_cast<hsize_t>(m.cols())});
  };
  write("/features", features.pool);
  if (features.spatial) write("/spatial_features", *features.spatial);
  out.commit();
}

}  // namespace vardp::eval
