// Sampling at scale: the images of an evaluation set (per class, as many as the test split has or
// a fixed number) split over ranks in contiguous blocks, each image's randomness keyed by
// (seed, class, index within the class) so the set does not depend on the number of ranks; every
// rank writes its shard and rank 0 an index file whose /images and /labels are HDF5 virtual
// datasets over the shards (h5py reads them as one dataset).
//
// Shard (format "vardp.samples.shard", version 1): /images uint8 (n_r, H, W, 3), /labels int64
// (n_r), /index_in_class int64 (n_r); root attributes first (global index of row 0), count.
// Index (format "vardp.samples", version 1): /images (n, H, W, 3) and /labels (n) virtual, root
// attributes shards (file names, relative to the index), shard_counts, cfg, top_k, top_p, seed,
// seed_rule, image_size, step, checkpoint.
// Shards and index are RELEASABLE: `stamp` writes the privacy stamp of the sampled model into
// each before it is committed (the caller's train::write_release_privacy; invariant 4). This
// area stays free of train/: it only calls it.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "vardp/io/provenance.hpp"
#include "vardp/model/sampling.hpp"
#include "vardp/model/var.hpp"
#include "vardp/model/vqvae.hpp"

namespace vardp::sample {

struct SamplePlan {
  std::vector<int64_t> labels;          // class of image i (class-major)
  std::vector<int64_t> index_in_class;  // i-th image of its class
};

// per_class[c] images of class c.
SamplePlan plan_per_class(const std::vector<int64_t>& per_class);

// Rank r's block [lo, hi) of n images over `ranks` ranks.
std::pair<int64_t, int64_t> block_of(int64_t n, int rank, int ranks);

// The seed of image (class, index): a counter-based stream (seed, sampling, class, index).
uint64_t image_seed(uint64_t seed, int64_t label, int64_t index_in_class);

// Samples images [lo, hi) of the plan (one autoregressive batch per image, each with its own
// seeded generator) and writes them to `path` atomically.
void write_shard(const std::string& path, model::VARImpl& var, model::VQVAEImpl& vae, const SamplePlan& plan,
                 int64_t lo, int64_t hi, const model::SampleOptions& options, uint64_t seed,
                 const io::Provenance& provenance, const std::function<void(hid_t)>& stamp);

// Rank 0, after every shard exists: the index file over `shards` (paths relative to the index's
// directory), with `count[r]` images in shard r, each H x W.
void write_index(const std::string& path, const std::vector<std::string>& shards, const std::vector<int64_t>& counts,
                 int64_t image_size, const io::Provenance& provenance, const model::SampleOptions& options,
                 uint64_t seed, int64_t step, const std::string& checkpoint,
                 const std::function<void(hid_t)>& stamp);

}  // namespace vardp::sample
