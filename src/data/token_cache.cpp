// Reading the token cache and the pool-view draw.
#include "vardp/data/token_cache.hpp"

#include "vardp/io/provenance.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/rng.hpp"

namespace vardp::data {

int64_t pool_view(uint64_t seed, int64_t step, int64_t example, int64_t view, int64_t pool_size) {
  rng::Stream s(seed, rng::Purpose::view, static_cast<uint64_t>(step), static_cast<uint64_t>(example),
                static_cast<uint64_t>(view) | (uint64_t{1} << 63));  // a sub-stream of the view draws
  return static_cast<int64_t>(s.below(static_cast<uint64_t>(pool_size)));
}

TokenCache::TokenCache(const std::string& path) : path_(path), file_(io::H5File::open(path)) {
  const hid_t f = file_.id();
  io::check_format(f, path, kTokenCacheFormat, 1);
  pool_ = io::h5_read_attr_int(f, "pool_views");
  L_ = io::h5_read_attr_int(f, "L");
  image_size_ = io::h5_read_attr_int(f, "image_size");
  patch_nums_ = io::h5_read_attr_ints(f, "patch_nums");
  dataset_sha_ = io::h5_read_attr_string(f, "dataset_images_sha256");
  vae_sha_ = io::h5_read_attr_string(f, "vae_sha256");
  labels_ = io::h5_read<int64_t>(f, "labels");
  n_ = static_cast<int64_t>(labels_.size());
  const auto dims = io::h5_dims(f, "tokens");
  if (dims.size() != 2 || static_cast<int64_t>(dims[0]) != n_ * pool_ || static_cast<int64_t>(dims[1]) != L_)
    throw Error(str("/tokens must be (N*P, L) = (", n_ * pool_, ", ", L_, ")"), path);
}

std::vector<int64_t> TokenCache::read(const std::vector<std::pair<int64_t, int64_t>>& rows) const {
  std::vector<int64_t> out;
  out.reserve(rows.size() * static_cast<size_t>(L_));
  for (const auto& [example, p] : rows) {
    if (example < 0 || example >= n_ || p < 0 || p >= pool_)
      throw Error(str("token cache row (", example, ", ", p, ") out of range"), path_);
    const auto row = io::h5_read_rows<int64_t>(file_.id(), "tokens", static_cast<hsize_t>(example * pool_ + p), 1);
    out.insert(out.end(), row.begin(), row.end());
  }
  return out;
}

}  // namespace vardp::data
