// vardp eval: FID / sFID, improved precision & recall, density & coverage and KID from stored
// features or statistics (docs/formats/eval.md). Also saves reference statistics once
// (--stats-out) so that a test split's features need not be kept around.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "app/command.hpp"
#include "app/job.hpp"
#include "vardp/eval/fid.hpp"
#include "vardp/eval/kid.hpp"
#include "vardp/eval/prdc.hpp"
#include "vardp/eval/precision_recall.hpp"
#include "vardp/eval/stats.hpp"
#include "vardp/eval/stats_io.hpp"
#include "vardp/io/atomic_file.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::app {
namespace {

constexpr const char* kUsage =
    "vardp eval --real R.h5 (--fake F.h5 --out M.h5 | --stats-out S.h5) [options]";
constexpr const char* kMetricsFormat = "vardp.metrics.eval";
constexpr int64_t kMetricsFormatVersion = 1;

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// One result line on stdout: "<name> <value>", full float64 precision.
void print_metric(const std::string& name, double value) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", value);
  std::cout << name << " " << buf << "\n" << std::flush;
}

eval::FeatureStats stats_of(const eval::FeatureSet& set) {
  return set.stats ? *set.stats : eval::compute_stats(*set.features);
}

void write_scalar(hid_t file, const std::string& path, double v) {
  io::h5_write<double>(file, path, &v, {});
}

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

int run_eval(const std::vector<std::string>& args) {
  po::options_description options(kUsage);
  options.add_options()
      ("real", po::value<std::string>()->required(), "reference set: features or statistics (HDF5)")
      ("fake", po::value<std::string>(), "generated set: features or statistics (HDF5)")
      ("out", po::value<std::string>(), "metrics file to write (format vardp.metrics.eval)")
      ("stats-out", po::value<std::string>(),
       "write the statistics of --real to this file (format vardp.eval.stats)")
      ("pr-k", po::value<std::vector<int>>()->multitoken(),
       "neighbourhood sizes k of precision/recall/density/coverage (default 3)")
      ("pr-membership", po::value<std::string>()->default_value("le"),
       "ball membership: le (d <= r, Kynkaanniemi / ADM evaluator) or lt (d < r, prdc)")
      ("no-pr", po::bool_switch(), "skip the k-NN metrics (precision, recall, density, coverage)")
      ("kid", po::bool_switch(), "also compute KID (unbiased, polynomial kernel, whole sets)")
      ("fid-method", po::value<std::string>()->default_value("auto"),
       "trace term: auto, stats_eigh or features_svd")
      ("threads", po::value<int>()->default_value(0),
       "worker threads for pairwise distances (0: the CPUs this process may use)")
      ("block-rows", po::value<int64_t>()->default_value(256),
       "rows per block of the pairwise distances (memory ~ threads * block-rows * N * 8 bytes)");
  po::variables_map vm;
  if (!parse_command_line(args, kUsage, options, vm)) return 0;

  const std::string real_path = vm["real"].as<std::string>();
  const bool has_fake = vm.count("fake") > 0;
  const bool has_out = vm.count("out") > 0;
  const bool has_stats_out = vm.count("stats-out") > 0;
  if (has_fake != has_out) throw UsageError("--fake and --out go together", "vardp eval");
  if (!has_fake && !has_stats_out) {
    throw UsageError("nothing to do: give --fake and --out, or --stats-out", "vardp eval");
  }
  std::vector<int> ks = vm.count("pr-k") ? vm["pr-k"].as<std::vector<int>>() : std::vector<int>{3};
  for (int k : ks) {
    if (k < 1) throw UsageError(str("--pr-k must be >= 1, got ", k), "vardp eval");
  }
  eval::ManifoldOptions mopt;
  mopt.ks = ks;
  mopt.membership = eval::membership_from_string(vm["pr-membership"].as<std::string>());
  mopt.pairwise.threads = vm["threads"].as<int>();
  mopt.pairwise.block_rows = vm["block-rows"].as<int64_t>();
  if (mopt.pairwise.block_rows < 1) throw UsageError("--block-rows must be >= 1", "vardp eval");
  const auto fid_method = eval::fid_method_from_string(vm["fid-method"].as<std::string>());
  const bool want_pr = has_fake && !vm["no-pr"].as<bool>();
  const bool want_kid = has_fake && vm["kid"].as<bool>();
  // Raw rows are held in memory only when a pairwise metric or the SVD route may use them.
  const bool load_features = want_pr || want_kid || fid_method != eval::FidMethod::stats_eigh;

  std::vector<std::pair<std::string, double>> timing;
  auto t0 = Clock::now();
  const auto real = eval::read_eval_input(real_path, has_fake && load_features);
  log::info("eval: real ", real_path, ": ", info_of(real.pool).kind, " n=", info_of(real.pool).n,
            " d=", info_of(real.pool).dim);

  if (has_stats_out) {
    const std::string stats_path = vm["stats-out"].as<std::string>();
    std::optional<eval::FeatureStats> spatial;
    if (real.spatial.present()) spatial = stats_of(real.spatial);
    const auto pool = stats_of(real.pool);
    eval::write_stats_file(stats_path, pool, spatial, real_path);
    std::cout << "stats_out " << stats_path << " n=" << pool.count << " d=" << pool.dim()
              << (spatial ? str(" spatial_d=", spatial->dim()) : std::string()) << "\n"
              << std::flush;
  }
  if (!has_fake) return 0;

  const std::string fake_path = vm["fake"].as<std::string>();
  const auto fake = eval::read_eval_input(fake_path, load_features);
  log::info("eval: fake ", fake_path, ": ", info_of(fake.pool).kind, " n=", info_of(fake.pool).n,
            " d=", info_of(fake.pool).dim);
  timing.emplace_back("read", seconds_since(t0));

  t0 = Clock::now();
  const auto fid = fid_of(real.pool, fake.pool, fid_method, "FID");
  timing.emplace_back("fid", seconds_since(t0));
  print_metric("fid", fid->fid);

  std::optional<eval::FidResult> sfid;
  if (real.spatial.present() && fake.spatial.present()) {
    t0 = Clock::now();
    sfid = fid_of(real.spatial, fake.spatial, fid_method, "sFID");
    timing.emplace_back("sfid", seconds_since(t0));
    print_metric("sfid", sfid->fid);
  } else if (real.spatial.present() || fake.spatial.present()) {
    log::warn("eval: sFID skipped: only one input has spatial features");
  }

  const bool both_features = real.pool.features && fake.pool.features;
  std::vector<eval::Prdc> prdc;
  if (want_pr && !both_features) {
    log::warn("eval: precision/recall/density/coverage skipped: they need raw /features in both "
              "inputs");
  } else if (want_pr) {
    t0 = Clock::now();
    prdc = eval::compute_prdc(*real.pool.features, *fake.pool.features, mopt);
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
  kopt.pairwise = mopt.pairwise;
  if (want_kid && !both_features) {
    log::warn("eval: KID skipped: it needs raw /features in both inputs");
  } else if (want_kid) {
    t0 = Clock::now();
    kid = eval::kernel_inception_distance(*real.pool.features, *fake.pool.features, kopt);
    timing.emplace_back("kid", seconds_since(t0));
    print_metric("kid", kid->kid);
  }

  // ---- metrics file ----
  io::AtomicH5File out(vm["out"].as<std::string>());
  const hid_t f = out.id();
  io::Provenance prov;
  prov.format = kMetricsFormat;
  prov.format_version = kMetricsFormatVersion;
  io::write_provenance(f, prov);
  std::ostringstream cmd;
  cmd << "vardp eval";
  for (const auto& a : args) cmd << " " << a;
  io::h5_write_attr(f, "command_line", cmd.str());
  const auto ir = info_of(real.pool), jf = info_of(fake.pool);
  io::h5_write_attr(f, "real_path", real_path);
  io::h5_write_attr(f, "fake_path", fake_path);
  io::h5_write_attr(f, "real_input", ir.kind);
  io::h5_write_attr(f, "fake_input", jf.kind);
  io::h5_write_attr(f, "n_real", ir.n);
  io::h5_write_attr(f, "n_fake", jf.n);
  io::h5_write_attr(f, "dim", ir.dim);
  write_fid(f, "fid", *fid);
  if (sfid) {
    write_fid(f, "sfid", *sfid);
    io::h5_write_attr(f, "spatial_dim", info_of(real.spatial).dim);
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
    io::h5_write_attr(g.id(), "membership", eval::to_string(mopt.membership));
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
  for (const auto& [phase, s] : timing) write_scalar(f, "/timing/" + phase + "_seconds", s);
  out.commit();
  std::string summary;
  for (const auto& [phase, s] : timing) summary += str(" ", phase, "=", s, "s");
  log::info("eval: wrote ", vm["out"].as<std::string>(), " (", summary.substr(1), ")");
  return 0;
}

}  // namespace
VARDP_COMMAND("eval", "FID / sFID, precision & recall, density & coverage, KID from features or statistics",
              run_eval);
}  // namespace vardp::app
