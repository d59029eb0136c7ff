// The token cache (`vardp tokenize`): a pool of P augmentation views per example, tokenised once
// by the frozen public VQ-VAE, so that training skips the VQ-VAE encoder. Training view v of
// example i at step t takes pool view pool_view(seed, t, i, v, P) (a counter-based draw, the
// same on every rank). Tokenising private images with a fixed public model releases nothing; the
// pool only replaces on-the-fly views by draws from a fixed set of P views per example.
//
// File (format "vardp.token_cache", version 1):
//   /tokens  uint16 (N * P, L) row i*P + p: token ids of pool view p of example i, scales
//                              concatenated coarse to fine
//   /labels  int64 (N)
//   root attributes: provenance, pool_views (P), L, patch_nums, image_size, hflip, seed,
//   dataset (path), dataset_images_sha256, vae (path), vae_sha256, view_rule
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "vardp/io/h5.hpp"

namespace vardp::data {

inline constexpr const char* kTokenCacheFormat = "vardp.token_cache";

// The `step` under which pool views are drawn (draw_train_view keys): no training step uses it.
inline constexpr int64_t kPoolStep = -1;

// Pool view used by training view `view` of `example` at `step`.
int64_t pool_view(uint64_t seed, int64_t step, int64_t example, int64_t view, int64_t pool_size);

class TokenCache {
 public:
  explicit TokenCache(const std::string& path);
  int64_t num_examples() const { return n_; }
  int64_t pool_views() const { return pool_; }
  int64_t tokens_per_view() const { return L_; }
  const std::vector<int64_t>& patch_nums() const { return patch_nums_; }
  const std::vector<int64_t>& labels() const { return labels_; }
  int64_t image_size() const { return image_size_; }
  const std::string& dataset_images_sha256() const { return dataset_sha_; }
  const std::string& vae_sha256() const { return vae_sha_; }  // of the VQ-VAE file that tokenised
  // Token ids (rows.size() x L, row-major) of (example, pool view) pairs.
  std::vector<int64_t> read(const std::vector<std::pair<int64_t, int64_t>>& rows) const;

 private:
  std::string path_;
  io::H5File file_;
  int64_t n_ = 0, pool_ = 0, L_ = 0, image_size_ = 0;
  std::vector<int64_t> patch_nums_, labels_;
  std::string dataset_sha_, vae_sha_;
};

}  // namespace vardp::data
