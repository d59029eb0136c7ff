// vardp eval: FID / sFID, improved precision & recall, density & coverage, KID and the class
// accuracy of generated samples (docs/formats/eval.md). Inputs are stored features or statistics,
// or images (dataset, samples or h5py files) mapped to features by a feature network: the small
// classifier of `vardp train-classifier` or the FID Inception. Also saves reference statistics
// once (--stats-out), and evaluates a run directory (--run DIR [--checkpoint C]): its samples
// against its test split, whose features are cached per (images, feature network).
//
// The metrics file is RELEASABLE: it is computed from the generated set (a release of the model)
// and the reference set, and carries the generated set's privacy stamp (train/release.hpp:
// "inherited" from a stamped samples file, else "unknown"; invariant 4). The guarantee covers the
// fake side only: metrics against a private --real set are not DP releases (docs/formats/eval.md).
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "app/command.hpp"
#include "app/config_loader.hpp"
#include "app/job.hpp"
#include "vardp/eval/fid.hpp"
#include "vardp/eval/image_features.hpp"
#include "vardp/eval/kid.hpp"
#include "vardp/eval/prdc.hpp"
#include "vardp/eval/precision_recall.hpp"
#include "vardp/eval/reference_cache.hpp"
#include "vardp/eval/stats.hpp"
#include "vardp/eval/stats_io.hpp"
#include "vardp/io/atomic_file.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/model/infer.hpp"
#include "vardp/train/checkpoint.hpp"
#include "vardp/train/checkpoint_dir.hpp"
#include "vardp/train/release.hpp"
#include "vardp/train/run_model.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::app {
namespace {

namespace fs = std::filesystem;

constexpr const char* kEvalUsage =
    "vardp eval --real R.h5 (--fake F.h5 --out M.h5 | --stats-out S.h5) [--classifier C.h5] [--inception PTH] "
    "[options]\n       vardp eval --run DIR [--checkpoint CKPT] [--set eval.key=value ...] [options]";
constexpr const char* kMetricsFormat = "vardp.metrics.eval";
constexpr int64_t kMetricsFormatVersion = 1;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// One result line on stdout: "<name> <value>", full float64 precision.
void print_metric(const std::string& name, double value) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", value);
  std::cout << name << " " << buf << "\n" << std::flush;
}

eval::FeatureStats stats_of(const eval::FeatureSet& set) {
  return set.stats ? *set.stats : eval::compute_stats(*set.features);
}

void write_scalar(hid_t file, const std::string& path, double v) { io::h5_write<double>(file, path, &v, {}); }

void write_fid(hid_t file, const std::string& name, const eval::FidResult& r) {
  write_scalar(file, "/" + name, r.fid);
  const std::string g = "/" + name + "_terms";
  write_scalar(file, g + "/mean_sq_diff", r.mean_sq_diff);
  write_scalar(file, g + "/trace_sigma_real", r.trace_sigma_a);
  write_scalar(file, g + "/trace_sigma_fake", r.trace_sigma_b);
  write_scalar(file, g + "/trace_sqrt_product", r.trace_sqrt_product);
  auto group = io::h5_require_group(file, g);
  io::h5_write_attr(group.id(), "method", eval::to_string(r.method));
  io::h5_write_attr(group.id(), "rank_used", r.rank_used);
}

struct SetInfo {
  int64_t n = 0;  // 0: statistics without a count
  int64_t dim = 0;
  std::string kind;  // "features" or "stats"
};
SetInfo info_of(const eval::FeatureSet& s) {
  SetInfo i;
  if (s.features) {
    i.n = s.features->rows();
    i.dim = s.features->cols();
    i.kind = "features";
  } else if (s.stats) {
    i.n = s.stats->count;
    i.dim = s.stats->dim();
    i.kind = "stats";
  }
  return i;
}

std::optional<eval::FidResult> fid_of(const eval::FeatureSet& real, const eval::FeatureSet& fake,
                                      eval::FidMethod method, const char* what) {
  if (!real.present() || !fake.present()) return std::nullopt;
  const auto ir = info_of(real), jf = info_of(fake);
  if (ir.dim != jf.dim) {
    throw UsageError(str(what, ": real has ", ir.dim, " features per sample, fake has ", jf.dim));
  }
  if (real.features && fake.features) {
    return eval::frechet_distance(*real.features, *fake.features, method);
  }
  if (method == eval::FidMethod::features_svd) {
    throw UsageError(str(what, ": --fid-method features_svd needs raw features in both inputs"));
  }
  return eval::frechet_distance(stats_of(real), stats_of(fake));
}

// ---- feature networks ----------------------------------------------------------------------

// The networks of one evaluation: Inception (when given) makes the features, the classifier
// makes them otherwise and always gives the predictions behind the class accuracy.
struct Networks {
  std::unique_ptr<eval::FeatureNetwork> inception;
  std::unique_ptr<eval::ClassifierNetwork> classifier;
  std::string inception_path, classifier_path;
  std::string feature_sha256;  // of the file of features()
  eval::FeatureNetwork* features() const {
    return inception ? inception.get() : static_cast<eval::FeatureNetwork*>(classifier.get());
  }
  const std::string& feature_path() const { return inception ? inception_path : classifier_path; }
  bool any() const { return inception || classifier; }
};

Networks load_networks(const std::string& classifier_path, const std::string& inception_path,
                       const torch::Device& device, int64_t batch) {
  Networks n;
  if (!classifier_path.empty()) {
    if (!train::file_exists(classifier_path)) throw UsageError("classifier file not found", classifier_path);
    n.classifier = std::make_unique<eval::ClassifierNetwork>(classifier_path, device, batch);
    n.classifier_path = classifier_path;
  }
  if (!inception_path.empty()) {
    if (!train::file_exists(inception_path)) throw UsageError("Inception weights not found", inception_path);
    n.inception = eval::make_inception_network(inception_path, device);
    n.inception_path = inception_path;
  }
  if (n.any()) n.feature_sha256 = train::file_sha256(n.feature_path());
  return n;
}

// The classifier and a labelled set must number the same classes the same way: the classifier is
// trained on a dataset with the run's labels (same original_class_ids where both say).
void check_label_sets(const eval::ClassifierInfo& c, const eval::ImageSetInfo& set) {
  const auto& mine = c.original_class_ids;
  const auto& theirs = set.original_class_ids;
  if (!mine.empty() && !theirs.empty() && mine != theirs) {
    auto list = [](const std::vector<int64_t>& v) {
      std::string s;
      for (auto x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
      return s;
    };
    throw UsageError(str("the classifier's labels are the source classes [", list(mine), "], this set's are [",
                         list(theirs), "]: train the classifier on a dataset prepared with the same --classes"),
                     set.path);
  }
  if (set.num_classes > 0 && set.num_classes != c.config.num_classes)
    throw UsageError(str("the set has ", set.num_classes, " classes, the classifier ", c.config.num_classes), set.path);
}

// ---- inputs --------------------------------------------------------------------------------

struct Input {
  std::string path;
  eval::EvalInput data;  // what the metrics use
  std::string kind;      // features, stats or images
  std::optional<eval::ImageSetInfo> images;
  std::vector<int64_t> labels;       // images: /labels (when present)
  std::vector<int64_t> predictions;  // images: the classifier's predictions (when computed)
};

Input input_from_features(const eval::ImageSetInfo& set, eval::ImageFeatures f) {
  Input in;
  in.path = set.path;
  in.kind = "images";
  in.images = set;
  in.data.path = set.path;
  in.data.pool.features = std::move(f.pool);
  if (f.spatial) in.data.spatial.features = std::move(*f.spatial);
  in.labels = std::move(f.labels);
  in.predictions = std::move(f.predictions);
  return in;
}

// Features of an image set; `predict`: also the classifier's predictions (a second pass when
// Inception makes the features).
Input image_input(const eval::ImageSetInfo& set, const Networks& nets, bool predict) {
  eval::FeatureNetwork* net = nets.features();
  if (!net) {
    throw UsageError(
        "images need a feature network: give --classifier C.h5 (vardp train-classifier) or "
        "--inception PTH",
        set.path);
  }
  Input in = input_from_features(set, eval::compute_image_features(set, *net));
  if (predict && in.predictions.empty() && nets.classifier && set.has_labels)
    in.predictions = eval::compute_image_features(set, *nets.classifier).predictions;
  return in;
}

Input load_input(const std::string& path, const Networks& nets, bool load_features, bool predict) {
  if (!train::file_exists(path)) throw UsageError("input file not found", path);
  if (eval::is_image_set(path)) return image_input(eval::read_image_set_info(path), nets, predict);
  Input in;
  in.path = path;
  in.data = eval::read_eval_input(path, load_features);
  in.kind = info_of(in.data.pool).kind;
  return in;
}

// ---- metrics -------------------------------------------------------------------------------

struct MetricOptions {
  eval::ManifoldOptions manifold;
  eval::FidMethod fid_method = eval::FidMethod::auto_select;
  bool pr = true;
  bool kid = false;
};

MetricOptions metric_options(const po::variables_map& vm, const std::vector<int>& ks) {
  MetricOptions m;
  for (int k : ks) {
    if (k < 1) throw UsageError(str("--pr-k must be >= 1, got ", k), "vardp eval");
  }
  m.manifold.ks = ks;
  m.manifold.membership = eval::membership_from_string(vm["pr-membership"].as<std::string>());
  m.manifold.pairwise.threads = vm["threads"].as<int>();
  m.manifold.pairwise.block_rows = vm["block-rows"].as<int64_t>();
  if (m.manifold.pairwise.block_rows < 1) throw UsageError("--block-rows must be >= 1", "vardp eval");
  m.fid_method = eval::fid_method_from_string(vm["fid-method"].as<std::string>());
  m.pr = !vm["no-pr"].as<bool>();
  m.kid = vm["kid"].as<bool>();
  return m;
}

// Everything written besides the metrics: provenance and the attributes of the caller.
struct OutputContext {
  std::string out_path;
  std::string command_line;
  std::string config_toml;
  int64_t world_size = 1;
  std::function<void(hid_t)> extra;  // more root attributes (run evaluation)
  train::ReleasePrivacy privacy;      // the generated set's stamp, carried on
};

void evaluate(const Input& real, const Input& fake, const Networks& nets, const MetricOptions& mopt,
              const OutputContext& ctx, std::vector<std::pair<std::string, double>> timing) {
  auto t0 = Clock::now();
  const auto fid = fid_of(real.data.pool, fake.data.pool, mopt.fid_method, "FID");
  timing.emplace_back("fid", seconds_since(t0));
  print_metric("fid", fid->fid);

  std::optional<eval::FidResult> sfid;
  if (real.data.spatial.present() && fake.data.spatial.present()) {
    t0 = Clock::now();
    sfid = fid_of(real.data.spatial, fake.data.spatial, mopt.fid_method, "sFID");
    timing.emplace_back("sfid", seconds_since(t0));
    print_metric("sfid", sfid->fid);
  } else if (real.data.spatial.present() || fake.data.spatial.present()) {
    log::warn("eval: sFID skipped: only one input has spatial features");
  }

  const bool both_features = real.data.pool.features && fake.data.pool.features;
  std::vector<eval::Prdc> prdc;
  if (mopt.pr && !both_features) {
    log::warn(
        "eval: precision/recall/density/coverage skipped: they need raw /features in both "
        "inputs");
  } else if (mopt.pr) {
    t0 = Clock::now();
    prdc = eval::compute_prdc(*real.data.pool.features, *fake.data.pool.features, mopt.manifold);
    timing.emplace_back("prdc", seconds_since(t0));
    for (const auto& m : prdc) {
      print_metric(str("precision@", m.k), m.precision);
      print_metric(str("recall@", m.k), m.recall);
      print_metric(str("density@", m.k), m.density);
      print_metric(str("coverage@", m.k), m.coverage);
    }
  }

  std::optional<eval::KidResult> kid;
  eval::KidOptions kopt;
  kopt.pairwise = mopt.manifold.pairwise;
  if (mopt.kid && !both_features) {
    log::warn("eval: KID skipped: it needs raw /features in both inputs");
  } else if (mopt.kid) {
    t0 = Clock::now();
    kid = eval::kernel_inception_distance(*real.data.pool.features, *fake.data.pool.features, kopt);
    timing.emplace_back("kid", seconds_since(t0));
    print_metric("kid", kid->kid);
  }

  std::optional<eval::ClassAccuracy> acc;
  if (nets.classifier && !fake.predictions.empty() && !fake.labels.empty()) {
    try {
      acc = eval::class_accuracy(fake.predictions, fake.labels, nets.classifier->info().config.num_classes);
    } catch (const Error& e) {
      throw UsageError(e.message() + ": the samples' labels and the classifier's classes must be the same label set",
                       fake.path);
    }
    print_metric("class_accuracy", acc->accuracy);
  } else if (nets.classifier && fake.images && !fake.images->has_labels) {
    log::warn("eval: class accuracy skipped: ", fake.path, " has no /labels");
  }

  // ---- metrics file ----
  io::AtomicH5File out(ctx.out_path);
  const hid_t f = out.id();
  io::Provenance prov;
  prov.format = kMetricsFormat;
  prov.format_version = kMetricsFormatVersion;
  prov.config_toml = ctx.config_toml;
  prov.world_size = ctx.world_size;
  io::write_provenance(f, prov);
  io::h5_write_attr(f, "command_line", ctx.command_line);
  const auto ir = info_of(real.data.pool), jf = info_of(fake.data.pool);
  io::h5_write_attr(f, "real_path", real.path);
  io::h5_write_attr(f, "fake_path", fake.path);
  io::h5_write_attr(f, "real_input", real.kind);
  io::h5_write_attr(f, "fake_input", fake.kind);
  io::h5_write_attr(f, "n_real", ir.n);
  io::h5_write_attr(f, "n_fake", jf.n);
  io::h5_write_attr(f, "dim", ir.dim);
  if (nets.features() && (real.images || fake.images)) {
    io::h5_write_attr(f, "feature_net", nets.features()->kind());
    io::h5_write_attr(f, "feature_net_path", nets.feature_path());
    io::h5_write_attr(f, "feature_net_sha256", nets.feature_sha256);
  }
  if (ctx.extra) ctx.extra(f);
  train::write_release_privacy(f, ctx.privacy);
  write_fid(f, "fid", *fid);
  if (sfid) {
    write_fid(f, "sfid", *sfid);
    io::h5_write_attr(f, "spatial_dim", info_of(real.data.spatial).dim);
  }
  if (!prdc.empty()) {
    std::vector<int64_t> k;
    std::vector<double> p, r, d, c;
    for (const auto& m : prdc) {
      k.push_back(m.k);
      p.push_back(m.precision);
      r.push_back(m.recall);
      d.push_back(m.density);
      c.push_back(m.coverage);
    }
    const std::vector<hsize_t> dims{static_cast<hsize_t>(k.size())};
    io::h5_write<int64_t>(f, "/pr/k", k, dims);
    io::h5_write<double>(f, "/pr/precision", p, dims);
    io::h5_write<double>(f, "/pr/recall", r, dims);
    io::h5_write<double>(f, "/pr/density", d, dims);
    io::h5_write<double>(f, "/pr/coverage", c, dims);
    auto g = io::h5_open_group(f, "/pr");
    io::h5_write_attr(g.id(), "membership", eval::to_string(mopt.manifold.membership));
    io::h5_write_attr(g.id(), "distance", "squared euclidean, float64");
  }
  if (kid) {
    write_scalar(f, "/kid", kid->kid);
    write_scalar(f, "/kid_terms/mean_k_real", kid->mean_k_real);
    write_scalar(f, "/kid_terms/mean_k_fake", kid->mean_k_fake);
    write_scalar(f, "/kid_terms/mean_k_cross", kid->mean_k_cross);
    auto g = io::h5_open_group(f, "/kid_terms");
    io::h5_write_attr(g.id(), "degree", static_cast<int64_t>(kopt.degree));
    io::h5_write_attr(g.id(), "gamma", 1.0 / static_cast<double>(ir.dim));
    io::h5_write_attr(g.id(), "coef0", kopt.coef0);
  }
  if (acc) {
    write_scalar(f, "/class_accuracy", acc->accuracy);
    const std::vector<hsize_t> dims{acc->per_class.size()};
    io::h5_write<double>(f, "/class_accuracy_per_class", acc->per_class, dims);
    io::h5_write<int64_t>(f, "/class_accuracy_counts", acc->counts, dims);
    const auto& info = nets.classifier->info();
    io::h5_write_attr(f, "classifier_path", nets.classifier_path);
    io::h5_write_attr(f, "classifier_test_accuracy", info.test_accuracy);
    if (!info.class_names.empty()) io::h5_write_attr(f, "class_names", info.class_names);
  }
  for (const auto& [phase, s] : timing) write_scalar(f, "/timing/" + phase + "_seconds", s);
  out.commit();
  std::string summary;
  for (const auto& [phase, s] : timing) summary += str(" ", phase, "=", s, "s");
  log::info("eval: wrote ", ctx.out_path, " (", summary.substr(1), ")");
}

std::string command_line(const std::vector<std::string>& args) {
  std::ostringstream cmd;
  cmd << "vardp eval";
  for (const auto& a : args) cmd << " " << a;
  return cmd.str();
}

// ---- vardp eval --real ... -----------------------------------------------------------------

int eval_files(const po::variables_map& vm, const std::vector<std::string>& args, const Networks& nets,
               const std::vector<int>& ks) {
  const std::string real_path = vm["real"].as<std::string>();
  const bool has_fake = vm.count("fake") > 0;
  const bool has_out = vm.count("out") > 0;
  const bool has_stats_out = vm.count("stats-out") > 0;
  if (has_fake != has_out) throw UsageError("--fake and --out go together", "vardp eval");
  if (!has_fake && !has_stats_out) {
    throw UsageError("nothing to do: give --fake and --out, or --stats-out", "vardp eval");
  }
  const MetricOptions mopt = metric_options(vm, ks);
  // Raw rows are held in memory only when a pairwise metric or the SVD route may use them.
  const bool load_features = has_fake && (mopt.pr || mopt.kid || mopt.fid_method != eval::FidMethod::stats_eigh);

  // Wall times: features_<side> for image inputs, one `read` for the stored features/statistics.
  std::vector<std::pair<std::string, double>> timing;
  double read_seconds = 0;
  auto t0 = Clock::now();
  const Input real = load_input(real_path, nets, load_features, false);
  log::info("eval: real ", real_path, ": ", real.kind, " n=", info_of(real.data.pool).n,
            " d=", info_of(real.data.pool).dim);
  if (real.images) {
    timing.emplace_back("features_real", seconds_since(t0));
  } else {
    read_seconds += seconds_since(t0);
  }

  if (has_stats_out) {
    const std::string stats_path = vm["stats-out"].as<std::string>();
    std::optional<eval::FeatureStats> spatial;
    if (real.data.spatial.present()) spatial = stats_of(real.data.spatial);
    const auto pool = stats_of(real.data.pool);
    eval::write_stats_file(stats_path, pool, spatial, real_path);
    std::cout << "stats_out " << stats_path << " n=" << pool.count << " d=" << pool.dim()
              << (spatial ? str(" spatial_d=", spatial->dim()) : std::string()) << "\n"
              << std::flush;
  }
  if (!has_fake) return 0;

  const std::string fake_path = vm["fake"].as<std::string>();
  if (!train::file_exists(fake_path)) throw UsageError("input file not found", fake_path);
  train::ReleasePrivacy privacy = train::read_release_privacy(fake_path);  // fails fast on a bad stamp
  t0 = Clock::now();
  const Input fake = load_input(fake_path, nets, load_features, true);
  log::info("eval: fake ", fake_path, ": ", fake.kind, " n=", info_of(fake.data.pool).n,
            " d=", info_of(fake.data.pool).dim);
  if (fake.images) {
    timing.emplace_back("features_fake", seconds_since(t0));
  } else {
    read_seconds += seconds_since(t0);
  }
  if (!real.images || !fake.images) timing.emplace_back("read", read_seconds);
  if (nets.classifier && fake.images) check_label_sets(nets.classifier->info(), *fake.images);

  OutputContext ctx;
  ctx.out_path = vm["out"].as<std::string>();
  ctx.command_line = command_line(args);
  ctx.privacy = std::move(privacy);
  evaluate(real, fake, nets, mopt, ctx, timing);
  return 0;
}

// ---- vardp eval --run DIR [--checkpoint C] -------------------------------------------------

int64_t checkpoint_step(const std::string& path) {
  if (!train::file_exists(path)) throw UsageError("checkpoint not found", path);
  auto f = io::H5File::open(path);
  io::check_format(f.id(), path, train::kCheckpointFormat, train::kCheckpointFormatVersion);
  return io::h5_read_attr_int(f.id(), "step");
}

struct SamplesFile {
  std::string path;
  int64_t step = -1;
  std::string checkpoint;
};

SamplesFile read_samples_attrs(const std::string& path) {
  SamplesFile s;
  s.path = path;
  auto f = io::H5File::open(path);
  if (io::h5_has_attr(f.id(), "step")) s.step = io::h5_read_attr_int(f.id(), "step");
  if (io::h5_has_attr(f.id(), "checkpoint")) s.checkpoint = io::h5_read_attr_string(f.id(), "checkpoint");
  return s;
}

// The samples of the evaluated weights: DIR/samples-<step>.h5 for --checkpoint (what
// `vardp sample --run DIR --checkpoint C` writes), else DIR/samples.h5; checked against the step.
SamplesFile find_samples(const std::string& run, const std::string& checkpoint) {
  const std::string plain = run + "/samples.h5";
  if (checkpoint.empty()) {
    if (!train::file_exists(plain)) throw UsageError("no samples.h5: run `vardp sample --run " + run + "` first", run);
    SamplesFile s = read_samples_attrs(plain);
    if (s.step < 0) throw UsageError("samples.h5 has no `step` attribute (not written by vardp sample --run)", plain);
    if (auto latest = train::CheckpointDir(run, 1).latest()) {
      const int64_t latest_step = checkpoint_step(*latest);
      if (latest_step != s.step)
        log::warn("eval: ", plain, " holds samples of step ", s.step, " but the latest checkpoint is step ",
                  latest_step, "; run `vardp sample --run ", run, "` again to evaluate it");
    }
    return s;
  }
  const int64_t step = checkpoint_step(checkpoint);
  const std::string per_step = train::step_file(run + "/samples", step);
  if (train::file_exists(per_step)) {
    SamplesFile s = read_samples_attrs(per_step);
    if (s.step != step)
      throw UsageError(str("holds samples of step ", s.step, ", the checkpoint is step ", step), per_step);
    s.checkpoint = checkpoint;
    return s;
  }
  if (train::file_exists(plain)) {  // `sample --run` without --checkpoint when this was the latest
    SamplesFile s = read_samples_attrs(plain);
    if (s.step == step) {
      s.checkpoint = checkpoint;
      return s;
    }
  }
  throw UsageError(str("no samples of step ", step, ": run `vardp sample --run ", run, " --checkpoint ", checkpoint,
                       "` first (it writes ", per_step, ")"),
                   run);
}

bool writable_dir(const std::string& dir) { return !dir.empty() && ::access(dir.c_str(), W_OK) == 0; }

std::string parent_dir(const std::string& path) {
  const std::string p = fs::path(path).parent_path().string();
  return p.empty() ? "." : p;
}

// Features of the run's test split: from the cache when one was written for these images and this
// feature network, else computed and cached in the first writable candidate directory.
Input reference_input(const eval::ImageSetInfo& set, const Networks& nets, const std::string& cache_dir,
                      const std::string& run, std::string& cache_used) {
  eval::FeatureNetwork& net = *nets.features();
  const eval::ReferenceKey key = eval::reference_key(set, net.kind(), nets.feature_sha256);
  const std::string name = eval::reference_cache_name(set.path, key);
  const std::vector<std::string> dirs =
      cache_dir.empty() ? std::vector<std::string>{parent_dir(set.path), run} : std::vector<std::string>{cache_dir};
  for (const auto& d : dirs) {
    if (auto cached = eval::read_reference_cache(d + "/" + name, key)) {
      log::info("eval: reference features from cache ", d + "/" + name, " (", cached->pool.rows(), " x ",
                cached->pool.cols(), ")");
      cache_used = d + "/" + name;
      cached->labels = eval::read_image_labels(set);
      return input_from_features(set, std::move(*cached));
    }
  }
  Input in = image_input(set, nets, false);
  eval::ImageFeatures f;
  f.pool = *in.data.pool.features;
  if (in.data.spatial.features) f.spatial = *in.data.spatial.features;
  for (const auto& d : dirs) {
    if (!writable_dir(d)) continue;
    const std::string path = d + "/" + name;
    try {
      eval::write_reference_cache(path, f, key, set.path);
      log::info("eval: reference features cached in ", path);
      cache_used = path;
      return in;
    } catch (const std::exception& e) {
      log::warn("eval: cannot write the reference cache ", path, ": ", e.what());
    }
  }
  log::warn("eval: reference features not cached: no writable directory among ",
            dirs.size() == 1 ? dirs[0] : dirs[0] + ", " + dirs[1]);
  return in;
}

// The work of one evaluation of a run (rank 0).
void eval_run_root(const po::variables_map& vm, const std::vector<std::string>& args, const config::Config& cfg,
                   const std::string& run, const std::vector<int>& ks, int world_size) {
  const std::string checkpoint_arg = vm["checkpoint"].as<std::string>();
  const SamplesFile samples = find_samples(run, checkpoint_arg);
  train::ReleasePrivacy privacy = train::read_release_privacy(samples.path);  // fails fast on a bad stamp
  const std::string out_path = vm.count("out")          ? vm["out"].as<std::string>()
                               : checkpoint_arg.empty() ? run + "/eval.h5"
                                                        : train::step_file(run + "/eval", samples.step);
  const std::string classifier = vm.count("classifier") ? vm["classifier"].as<std::string>() : cfg.eval.classifier;
  const std::string inception = vm.count("inception") ? vm["inception"].as<std::string>() : cfg.eval.inception;
  if (classifier.empty() && inception.empty())
    throw UsageError(
        "no feature network: set eval.classifier or eval.inception in the run's config (or give "
        "--classifier / --inception)",
        run);
  if (cfg.data.test.empty() || !train::file_exists(cfg.data.test))
    throw UsageError("the run's data.test (" + cfg.data.test + ") is not there", run);
  const eval::ImageSetInfo test = eval::read_image_set_info(cfg.data.test);
  const eval::ImageSetInfo fake_set = eval::read_image_set_info(samples.path);
  const MetricOptions mopt = metric_options(vm, ks);

  const torch::Device device = model::resolve_device(vm["device"].as<std::string>());
  const Networks nets = load_networks(classifier, inception, device, vm["batch"].as<int64_t>());
  if (nets.classifier) check_label_sets(nets.classifier->info(), test);
  log::info("eval --run: ", samples.path, " (step ", samples.step, ", ", fake_set.count, " images) against ",
            cfg.data.test, " (", test.count, " images), features: ", nets.features()->kind(), " ", nets.feature_path());

  std::vector<std::pair<std::string, double>> timing;
  auto t0 = Clock::now();
  std::string cache_used;
  const Input real = reference_input(test, nets, cfg.eval.reference_cache, run, cache_used);
  timing.emplace_back("features_real", seconds_since(t0));
  t0 = Clock::now();
  const Input fake = image_input(fake_set, nets, true);
  timing.emplace_back("features_fake", seconds_since(t0));

  OutputContext ctx;
  ctx.out_path = out_path;
  ctx.command_line = command_line(args);
  ctx.config_toml = to_toml(cfg);
  ctx.world_size = world_size;
  ctx.privacy = std::move(privacy);
  ctx.extra = [&](hid_t f) {
    io::h5_write_attr(f, "step", samples.step);
    io::h5_write_attr(f, "checkpoint", samples.checkpoint);
    io::h5_write_attr(f, "run_dir", run);
    io::h5_write_attr(f, "reference_cache", cache_used);
  };
  evaluate(real, fake, nets, mopt, ctx, timing);
}

int eval_run(const po::variables_map& vm, const std::vector<std::string>& args, const std::vector<int>& ks_arg) {
  dist::Comm& comm = world();
  log::configure(comm.rank(), false);
  for (const char* direct : {"real", "fake", "stats-out"}) {
    if (vm.count(direct))
      throw UsageError(str("--", direct, " does not go with --run (the run gives the real and fake sets)"),
                       "vardp eval");
  }
  const std::string run = vm["run"].as<std::string>();
  ConfigSources src;
  src.file = run + "/config.toml";
  if (!train::file_exists(src.file)) throw UsageError("not a run directory (no config.toml)", run);
  if (vm.count("set")) src.sets = vm["set"].as<std::vector<std::string>>();
  const config::Config cfg = load_config(src);
  const std::vector<int> ks = ks_arg.empty() ? std::vector<int>{static_cast<int>(cfg.eval.pr_k)} : ks_arg;

  // Rank 0 evaluates; the others wait for its verdict, so that an error on rank 0 ends every rank
  // the same way (exit code included) instead of leaving them in a collective.
  std::string error;
  int usage = 0;
  if (comm.is_root()) {
    try {
      eval_run_root(vm, args, cfg, run, ks, comm.size());
    } catch (const UsageError& e) {
      error = e.what();
      usage = 1;
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "unknown error";
    }
  }
  error = comm.broadcast(error, 0);
  usage = static_cast<int>(comm.all_reduce(static_cast<int64_t>(usage), dist::ReduceOp::max));
  if (!error.empty()) throw CollectiveError(error, "", usage != 0);
  return 0;
}

int run_eval(const std::vector<std::string>& args) {
  po::options_description options(kEvalUsage);
  options.add_options()("real", po::value<std::string>(), "reference set: features, statistics or images (HDF5)")(
      "fake", po::value<std::string>(), "generated set: features, statistics or images (HDF5)")(
      "out", po::value<std::string>(),
      "metrics file to write (format vardp.metrics.eval; with --run default DIR/eval.h5 or DIR/eval-<step>.h5)")(
      "stats-out", po::value<std::string>(), "write the statistics of --real to this file (format vardp.eval.stats)")(
      "classifier", po::value<std::string>(),
      "vardp train-classifier file: features of images (unless --inception) and the class accuracy")(
      "inception", po::value<std::string>(), "FID Inception weights (pt_inception-2015-12-05-6726825d.pth)")(
      "run", po::value<std::string>(), "evaluate a run directory: DIR/samples.h5 against the config's data.test")(
      "checkpoint", po::value<std::string>()->default_value(""),
      "with --run: the samples of this checkpoint (DIR/samples-<step>.h5 of vardp sample --run --checkpoint)")(
      "set", po::value<std::vector<std::string>>()->composing(),
      "with --run: override a key of the run's config, e.g. --set eval.classifier=C.h5 (repeatable)")(
      "pr-k", po::value<std::vector<int>>()->multitoken(),
      "neighbourhood sizes k of precision/recall/density/coverage (default 3; --run: eval.pr_k)")(
      "pr-membership", po::value<std::string>()->default_value("le"),
      "ball membership: le (d <= r, Kynkaanniemi / ADM evaluator) or lt (d < r, prdc)")(
      "no-pr", po::bool_switch(), "skip the k-NN metrics (precision, recall, density, coverage)")(
      "kid", po::bool_switch(), "also compute KID (unbiased, polynomial kernel, whole sets)")(
      "fid-method", po::value<std::string>()->default_value("auto"), "trace term: auto, stats_eigh or features_svd")(
      "threads", po::value<int>()->default_value(0),
      "worker threads for pairwise distances and LibTorch (0: the CPUs this process may use)")(
      "block-rows", po::value<int64_t>()->default_value(256),
      "rows per block of the pairwise distances (memory ~ threads * block-rows * N * 8 bytes)")(
      "batch", po::value<int64_t>()->default_value(256), "images per classifier batch")(
      "device", po::value<std::string>()->default_value("auto"), "feature network device: auto, cpu, cuda, cuda:N");
  po::variables_map vm;
  if (!parse_command_line(args, kEvalUsage, options, vm)) return 0;
  if (vm["threads"].as<int>() < 0) throw UsageError("--threads must be >= 0", "vardp eval");
  if (vm["threads"].as<int>() > 0) torch::set_num_threads(vm["threads"].as<int>());
  if (vm["batch"].as<int64_t>() < 1) throw UsageError("--batch must be >= 1", "vardp eval");
  const std::vector<int> ks = vm.count("pr-k") ? vm["pr-k"].as<std::vector<int>>() : std::vector<int>{};
  if (vm.count("run")) return eval_run(vm, args, ks);

  if (!vm.count("real")) throw UsageError("--real is required (or --run DIR)", "vardp eval");
  for (const char* run_only : {"checkpoint", "set"}) {
    if (vm.count(run_only) && !vm[run_only].defaulted())
      throw UsageError(str("--", run_only, " goes with --run"), "vardp eval");
  }
  const std::string classifier = vm.count("classifier") ? vm["classifier"].as<std::string>() : "";
  const std::string inception = vm.count("inception") ? vm["inception"].as<std::string>() : "";
  const Networks nets = load_networks(classifier, inception, model::resolve_device(vm["device"].as<std::string>()),
                                      vm["batch"].as<int64_t>());
  return eval_files(vm, args, nets, ks.empty() ? std::vector<int>{3} : ks);
}

}  // namespace
VARDP_COMMAND("eval", "FID / sFID, precision & recall, density & coverage, KID, class accuracy; --run DIR", run_eval);
}  // namespace vardp::app
