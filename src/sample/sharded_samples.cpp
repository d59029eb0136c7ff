// Rank-sharded sample sets with an HDF5 virtual-dataset index.
#include "vardp/sample/sharded_samples.hpp"

#include <hdf5.h>
#include <torch/torch.h>

#include "vardp/io/atomic_file.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/model/infer.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"
#include "vardp/util/rng.hpp"

namespace vardp::sample {

SamplePlan plan_per_class(const std::vector<int64_t>& per_class) {
  SamplePlan p;
  for (size_t c = 0; c < per_class.size(); ++c)
    for (int64_t i = 0; i < per_class[c]; ++i) {
      p.labels.push_back(static_cast<int64_t>(c));
      p.index_in_class.push_back(i);
    }
  return p;
}

std::pair<int64_t, int64_t> block_of(int64_t n, int rank, int ranks) {
  return {n * rank / ranks, n * (rank + 1) / ranks};
}

uint64_t image_seed(uint64_t seed, int64_t label, int64_t index_in_class) {
  return rng::Stream(seed, rng::Purpose::sampling, static_cast<uint64_t>(label), static_cast<uint64_t>(index_in_class))
      .derive_seed();
}

void write_shard(const std::string& path, model::VARImpl& var, model::VQVAEImpl& vae, const SamplePlan& plan,
                 int64_t lo, int64_t hi, const model::SampleOptions& options, uint64_t seed,
                 const io::Provenance& provenance, const std::function<void(hid_t)>& stamp) {
  VARDP_CHECK(stamp, path, ": a samples shard is releasable and needs the model's privacy stamp");
  const int64_t R = vae.config().image_size();
  std::vector<uint8_t> images;
  std::vector<int64_t> labels, index;
  torch::NoGradGuard no_grad;
  const auto device = var.parameters().front().device();
  for (int64_t i = lo; i < hi; ++i) {
    model::SampleOptions opt = options;
    const int64_t c = plan.labels[static_cast<size_t>(i)], k = plan.index_in_class[static_cast<size_t>(i)];
    opt.seed = image_seed(seed, c, k);
    torch::Tensor lab = torch::full({1}, c, torch::TensorOptions().dtype(torch::kLong).device(device));
    torch::Tensor img = model::to_uint8_hwc(model::autoregressive_infer_cfg(var, vae, 1, lab, opt).images);
    images.insert(images.end(), img.data_ptr<uint8_t>(), img.data_ptr<uint8_t>() + img.numel());
    labels.push_back(c);
    index.push_back(k);
    if ((i - lo + 1) % 50 == 0) log::info("sample: ", i - lo + 1, "/", hi - lo, " images of this rank");
  }
  io::AtomicH5File f(path);
  io::Provenance p = provenance;
  p.format = "vardp.samples.shard";
  p.format_version = 1;
  io::write_provenance(f.id(), p);
  io::h5_write_attr(f.id(), "first", lo);
  io::h5_write_attr(f.id(), "count", hi - lo);
  stamp(f.id());
  const auto n = static_cast<hsize_t>(hi - lo);
  io::h5_write<uint8_t>(f.id(), "images", images, {n, static_cast<hsize_t>(R), static_cast<hsize_t>(R), 3});
  io::h5_write<int64_t>(f.id(), "labels", labels, {n});
  io::h5_write<int64_t>(f.id(), "index_in_class", index, {n});
  f.commit();
}

namespace {

// A virtual dataset `name` of shape (n, rest...) whose rows come from `name` in each shard.
void write_virtual(hid_t file, const std::string& name, hid_t type, const std::vector<std::string>& shards,
                   const std::vector<int64_t>& counts, std::vector<hsize_t> rest) {
  hsize_t total = 0;
  for (int64_t c : counts) total += static_cast<hsize_t>(c);
  std::vector<hsize_t> dims{total};
  dims.insert(dims.end(), rest.begin(), rest.end());
  io::H5Handle vspace(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  io::H5Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  hsize_t first = 0;
  for (size_t r = 0; r < shards.size(); ++r) {
    if (counts[r] == 0) continue;
    std::vector<hsize_t> start(dims.size(), 0), count = dims;
    start[0] = first;
    count[0] = static_cast<hsize_t>(counts[r]);
    H5Sselect_hyperslab(vspace.id(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
    io::H5Handle src(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr));
    if (H5Pset_virtual(dcpl.id(), vspace.id(), shards[r].c_str(), ("/" + name).c_str(), src.id()) < 0)
      throw Error("cannot map shard " + shards[r] + " into the virtual dataset " + name);
    first += count[0];
  }
  H5Sselect_all(vspace.id());
  io::H5Handle ds(H5Dcreate2(file, name.c_str(), type, vspace.id(), H5P_DEFAULT, dcpl.id(), H5P_DEFAULT));
  if (!ds.valid()) throw Error("cannot create the virtual dataset " + name);
}

}  // namespace

void write_index(const std::string& path, const std::vector<std::string>& shards, const std::vector<int64_t>& counts,
                 int64_t image_size, const io::Provenance& provenance, const model::SampleOptions& options,
                 uint64_t seed, int64_t step, const std::string& checkpoint,
                 const std::function<void(hid_t)>& stamp) {
  io::AtomicH5File f(path);
  io::Provenance p = provenance;
  p.format = "vardp.samples";
  p.format_version = 1;
  io::write_provenance(f.id(), p);
  io::h5_write_attr(f.id(), "shards", shards);
  io::h5_write_attr(f.id(), "shard_counts", counts);
  io::h5_write_attr(f.id(), "cfg", options.cfg);
  io::h5_write_attr(f.id(), "top_k", options.top_k);
  io::h5_write_attr(f.id(), "top_p", options.top_p);
  io::h5_write_attr(f.id(), "seed", static_cast<int64_t>(seed));
  io::h5_write_attr(f.id(), "seed_rule",
                    "image i of class c uses the generator seeded from stream (seed, sampling, c, i)");
  io::h5_write_attr(f.id(), "image_size", image_size);
  io::h5_write_attr(f.id(), "step", step);
  io::h5_write_attr(f.id(), "checkpoint", checkpoint);
  VARDP_CHECK(stamp, path, ": a samples index is releasable and needs the model's privacy stamp");
  stamp(f.id());
  const auto R = static_cast<hsize_t>(image_size);
  write_virtual(f.id(), "images", H5T_NATIVE_UINT8, shards, counts, {R, R, 3});
  write_virtual(f.id(), "labels", H5T_NATIVE_INT64, shards, counts, {});
  f.commit();
}

}  // namespace vardp::sample
