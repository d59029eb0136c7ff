// `vardp sample --run DIR`: rebuilds the adapted model of a run (config.toml + checkpoint),
// samples per class eval.per_class images (0: as many as the run's test split has; or
// --per-class n) with the run's eval.cfg / top_k / top_p / seed, rank-sharded,
// writes DIR/samples.h5 (index over the shards; DIR/samples-<step>.h5 for --checkpoint) and a PNG
// contact sheet next to it (DIR/samples.png). Shards and index are releasable and carry the
// checkpoint's privacy ledger (train/release.hpp).
#include "app/sample_run.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "app/config_loader.hpp"
#include "app/job.hpp"
#include "app/run_dir.hpp"
#include "vardp/data/image.hpp"
#include "vardp/data/reader.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/model/infer.hpp"
#include "vardp/sample/sharded_samples.hpp"
#include "vardp/train/checkpoint_dir.hpp"
#include "vardp/train/release.hpp"
#include "vardp/train/run_model.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::app {
namespace {

std::string without_h5(const std::string& path) {
  const bool h5 = path.size() > 3 && path.compare(path.size() - 3, 3, ".h5") == 0;
  return h5 ? path.substr(0, path.size() - 3) : path;
}

// Up to `per_row` images of each class side by side, one row per class.
void write_contact_sheet(const std::string& index_path, const std::string& png, int64_t classes, int per_row) {
  io::H5File f = io::H5File::open(index_path);
  std::vector<hsize_t> dims;
  const std::vector<uint8_t> images = io::h5_read<uint8_t>(f.id(), "images", &dims);
  const std::vector<int64_t> labels = io::h5_read<int64_t>(f.id(), "labels");
  const int R = static_cast<int>(dims[1]);
  data::Image sheet(per_row * R, static_cast<int>(classes) * R, 3);
  std::vector<int> filled(static_cast<size_t>(classes), 0);
  for (size_t i = 0; i < labels.size(); ++i) {
    const int64_t c = labels[i];
    if (c < 0 || c >= classes || filled[static_cast<size_t>(c)] >= per_row) continue;
    const int col = filled[static_cast<size_t>(c)]++;
    for (int y = 0; y < R; ++y)
      std::copy_n(images.data() + (i * R + y) * R * 3, R * 3, sheet.row(static_cast<int>(c) * R + y) + col * R * 3);
  }
  data::write_png(png, sheet);
}

}  // namespace

int sample_run(const po::variables_map& vm) {
  dist::Comm& comm = world();
  const std::string run = vm["run"].as<std::string>();
  LoadedRun loaded = load_run(run, vm["checkpoint"].as<std::string>());
  const config::Config& cfg = loaded.config;
  const std::string& ck = loaded.checkpoint;
  train::TrainedModel& t = loaded.model;
  torch::Device device = model::resolve_device(vm["device"].as<std::string>());
  if (device.is_cuda() && !device.has_index())
    device = torch::Device(torch::kCUDA,
                           comm.local_rank() % std::max<int>(1, static_cast<int>(torch::cuda::device_count())));
  t.models.var->to(device);
  t.models.vae->to(device);
  const int64_t classes = t.models.var->config().num_classes;

  // The run's [eval] section sets the evaluation set (per_class, cfg, top_k, top_p, seed); an
  // option given on the command line wins.
  auto given = [&](const char* name) { return vm.count(name) && !vm[name].defaulted(); };
  std::vector<int64_t> per_class(static_cast<size_t>(classes), 0);
  if (given("per-class") || cfg.eval.per_class > 0) {
    std::fill(per_class.begin(), per_class.end(),
              given("per-class") ? vm["per-class"].as<int64_t>() : cfg.eval.per_class);
  } else {
    if (!train::file_exists(cfg.data.test))
      throw UsageError("the run's data.test (" + cfg.data.test + ") is not there; give --per-class n", "--per-class");
    data::DatasetReader test(cfg.data.test);
    for (int64_t y : test.labels())
      if (y >= 0 && y < classes) ++per_class[static_cast<size_t>(y)];
  }
  const sample::SamplePlan plan = sample::plan_per_class(per_class);
  const int64_t n = static_cast<int64_t>(plan.labels.size());
  VARDP_CHECK(n > 0, "nothing to sample");

  model::SampleOptions opt;
  opt.cfg = given("cfg") ? vm["cfg"].as<double>() : cfg.eval.cfg;
  opt.top_k = given("top-k") ? vm["top-k"].as<int64_t>() : cfg.eval.top_k;
  opt.top_p = given("top-p") ? vm["top-p"].as<double>() : cfg.eval.top_p;
  opt.more_smooth = vm["more-smooth"].as<bool>();
  const uint64_t seed = given("seed") ? vm["seed"].as<uint64_t>() : static_cast<uint64_t>(cfg.eval.seed);
  std::string out = run + "/samples.h5";
  if (vm.count("out")) {
    out = vm["out"].as<std::string>();
  } else if (!vm["checkpoint"].as<std::string>().empty()) {
    // An explicit --checkpoint gets its own samples-<step>.h5, so that sampling an intermediate
    // checkpoint never replaces the samples of the final model (`vardp eval --run --checkpoint`
    // reads that name).
    out = train::step_file(run + "/samples", t.step);
  }
  const std::string dir = out.find('/') == std::string::npos ? "." : out.substr(0, out.rfind('/'));
  const std::string stem = without_h5(out.substr(out.rfind('/') + 1));
  std::vector<std::string> shards;
  std::vector<int64_t> counts;
  for (int r = 0; r < comm.size(); ++r) {
    shards.push_back(stem + "-shard-" + std::to_string(r) + "-of-" + std::to_string(comm.size()) + ".h5");
    const auto b = sample::block_of(n, r, comm.size());
    counts.push_back(b.second - b.first);
  }
  const auto mine = sample::block_of(n, comm.rank(), comm.size());
  log::info("sample --run: ", n, " images (", classes, " classes) from ", ck, " (step ", t.step, ") on ", comm.size(),
            " rank(s)");
  io::Provenance prov;
  prov.config_toml = to_toml(cfg);
  prov.world_size = comm.size();
  // The samples are a release of the checkpoint's model: every shard and the index carry its
  // ledger (invariant 4; train/release.hpp).
  const train::ReleasePrivacy privacy = train::ReleasePrivacy::of_run(t.ledger);
  const auto stamp = [&](hid_t f) { train::write_release_privacy(f, privacy); };
  sample::write_shard(dir + "/" + shards[static_cast<size_t>(comm.rank())], *t.models.var, *t.models.vae, plan,
                      mine.first, mine.second, opt, seed, prov, stamp);
  comm.barrier();
  if (comm.is_root()) {
    sample::write_index(out, shards, counts, t.models.vae->config().image_size(), prov, opt, seed, t.step, ck,
                        stamp);
    const std::string png = without_h5(out) + ".png";
    write_contact_sheet(out, png, classes, 8);
    log::info("sample --run: wrote ", out, " (", shards.size(), " shards) and ", png);
  }
  comm.barrier();
  return 0;
}

}  // namespace vardp::app
