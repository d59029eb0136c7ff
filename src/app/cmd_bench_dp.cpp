// vardp bench-dp: cost of a DP-SGD step against a non-private step on the same micro-batch, for
// each per-example-gradient strategy (reference, instantiate = Opacus, bk = fastDP book-keeping)
// at augmult k = 1 (R examples x 1 view) and k (R/k examples x k views), for the full and the
// AdaLN-only ("lntune") and LoRA parameter sets of a small VAR. Privacy argument: none here - this only
// times the engine of dp/engine.hpp; noise and clipping run as in training.
//
// Peak memory is the peak of LibTorch's CPU allocations during a step above their level at the
// step's start (the allocator's memory-profiling hook, on the calling thread), so memory that
// the step frees again (per-example gradients, Gram matrices, activations) is counted.
// With --out, the numbers go to an HDF5 file (format "vardp.bench.dp", version 1): root
// attributes config, threads, micro_batch, augmult, case_names (strings "set/k/strategy"), and
// datasets /step_seconds, /peak_bytes, /time_ratio, /memory_ratio (one entry per case; ratios
// against the non-private step of the same parameter set) and /trainable_params (per case).
#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "app/command.hpp"
#include "app/int_list.hpp"
#include "vardp/train/adaptation.hpp"
#include "vardp/compat/torch_compat.hpp"
#include "app/job.hpp"
#include "vardp/dist/tensor_comm.hpp"
#include "vardp/dp/engine.hpp"
#include "vardp/io/atomic_file.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/model/var.hpp"
#include "vardp/util/error.hpp"

namespace vardp::app {
namespace {

constexpr const char* kBenchDpUsage =
    "vardp bench-dp [--depth 4] [--micro-batch 8] [--augmult 4] [--sets full,lntune,lora] "
    "[--strategies reference,instantiate,bk] [--out FILE]";

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// Receives every CPU allocation and free of LibTorch's default allocator on this thread while
// installed; tracks the running total since reset() and its peak.
class PeakTracker : public c10::MemoryReportingInfoBase {
 public:
  void reportMemoryUsage(void*, int64_t alloc_size, compat::MemoryTotal, compat::MemoryTotal, c10::Device) override {
    current_ += alloc_size;
    peak_ = std::max(peak_, current_);
  }
  bool memoryProfilingEnabled() const override { return true; }
  void reset() { current_ = peak_ = 0; }
  int64_t peak() const { return peak_; }

 private:
  int64_t current_ = 0, peak_ = 0;
};

struct Measure {
  double seconds = 0;     // median over iterations
  double peak_bytes = 0;  // allocation peak of one step above its start
};

// Times `iters` steps (median), then runs one more step with the allocation tracker installed
// (its bookkeeping would otherwise slow the timed steps down).
template <class Fn>
Measure measure(int warmup, int iters, Fn step) {
  for (int i = 0; i < warmup; ++i) step();
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  auto tracker = std::make_shared<PeakTracker>();
  {
    c10::DebugInfoGuard guard(c10::DebugInfoKind::PROFILER_STATE, tracker);
    step();
  }
  return Measure{times[times.size() / 2], static_cast<double>(tracker->peak())};
}

int run_bench_dp(const std::vector<std::string>& args) {
  po::options_description options(kBenchDpUsage);
  options.add_options()
      ("depth", po::value<int64_t>()->default_value(4), "transformer blocks (width 64*depth, heads depth)")
      ("embed-dim", po::value<int64_t>()->default_value(0), "width (0: 64*depth)")
      ("patch-nums", po::value<std::string>()->default_value("1,2,3,4,5,6,8"), "token pyramid")
      ("vocab", po::value<int64_t>()->default_value(1024), "codebook size V")
      ("cvae", po::value<int64_t>()->default_value(32), "VQ-VAE latent channels")
      ("classes", po::value<int64_t>()->default_value(100), "number of classes")
      ("micro-batch", po::value<int64_t>()->default_value(8), "rows ((example, view) units) per step")
      ("augmult", po::value<int64_t>()->default_value(4), "views per example of the k > 1 cases")
      ("sets", po::value<std::string>()->default_value("full,lntune,lora"),
       "parameter sets: full, lntune, lora (LoRA factors on attn+mlp+adaln, measured last)")
      ("lora-rank", po::value<int64_t>()->default_value(8), "LoRA rank of the lora set")
      ("strategies", po::value<std::string>()->default_value("reference,instantiate,bk"),
       "per-example gradient strategies")
      ("norm-rule", po::value<std::string>()->default_value("cost"), "BK per-layer rule: cost, ghost, instantiate")
      ("iters", po::value<int>()->default_value(3), "timed steps per case")
      ("warmup", po::value<int>()->default_value(1), "untimed steps first")
      ("threads", po::value<int>()->default_value(0), "intra-op CPU threads (0: LibTorch's default)")
      ("seed", po::value<uint64_t>()->default_value(0), "seed of the random weights and inputs")
      ("out", po::value<std::string>(), "also write the numbers to this HDF5 file");
  po::variables_map vm;
  if (!parse_command_line(args, kBenchDpUsage, options, vm)) return 0;
  const int64_t R = vm["micro-batch"].as<int64_t>(), k = vm["augmult"].as<int64_t>();
  const int iters = vm["iters"].as<int>(), warmup = vm["warmup"].as<int>();
  if (R < 1 || k < 1 || R % k != 0 || iters < 1 || warmup < 0)
    throw UsageError("--micro-batch must be a positive multiple of --augmult; --iters >= 1", "vardp bench-dp");
  if (vm["threads"].as<int>() > 0) torch::set_num_threads(vm["threads"].as<int>());
  const dp::NormRule rule = dp::parse_norm_rule(vm["norm-rule"].as<std::string>());
  std::vector<dp::GradStrategy> strategies;
  for (const auto& s : split(vm["strategies"].as<std::string>())) strategies.push_back(dp::parse_grad_strategy(s));
  std::vector<std::string> sets = split(vm["sets"].as<std::string>());
  for (const auto& s : sets)
    if (s != "full" && s != "lntune" && s != "lora") throw UsageError(str("unknown parameter set '", s, "'"), "--sets");
  // LoRA adds factors to the model, so it comes after the sets that must not contain them.
  std::stable_partition(sets.begin(), sets.end(), [](const std::string& s) { return s != "lora"; });

  model::VARConfig c = model::VARConfig::for_depth(vm["depth"].as<int64_t>(), vm["classes"].as<int64_t>(),
                                                   vm["vocab"].as<int64_t>(), vm["cvae"].as<int64_t>(),
                                                   parse_int_list(vm["patch-nums"].as<std::string>(), "--patch-nums"));
  if (vm["embed-dim"].as<int64_t>() > 0) {
    c.embed_dim = vm["embed-dim"].as<int64_t>();
    c.num_heads = std::max<int64_t>(1, c.embed_dim / 64);
  }
  c.drop_path_rate = 0;  // deterministic steps: every strategy computes the same update
  c.validate();

  torch::manual_seed(vm["seed"].as<uint64_t>());
  model::VAR var(c);
  var->init_weights();
  var->train();
  torch::Tensor x = torch::randn({R, c.L() - c.first_l(), c.Cvae});
  torch::Tensor labels = torch::randint(0, c.num_classes, {R}, torch::kLong);
  torch::Tensor targets = torch::randint(0, c.vocab_size, {R, c.L()}, torch::kLong);
  auto single = dist::make_single_comm();
  dist::TensorComm tc(*single);

  std::printf("bench-dp: %s\n", c.describe().c_str());
  std::printf("  threads %d, micro-batch %lld rows; k=1: %lld examples x 1 view, k=%lld: %lld examples x %lld views\n",
              torch::get_num_threads(), static_cast<long long>(R), static_cast<long long>(R),
              static_cast<long long>(k), static_cast<long long>(R / k), static_cast<long long>(k));
  std::printf("  %-7s %-3s %-12s %8s %10s %7s %7s  %s\n", "set", "k", "strategy", "params", "step_s", "x_time",
              "peak_MiB", "x_mem");

  std::vector<std::string> names;
  std::vector<double> secs, peaks, tratio, mratio;
  std::vector<int64_t> nparams, ks;
  for (const auto& set_name : sets) {
    if (set_name == "lora") {
      config::AdaptConfig lora;
      lora.method = "lora";
      lora.lora_rank = vm["lora-rank"].as<int64_t>();
      lora.lora_alpha = 2.0 * static_cast<double>(lora.lora_rank);
      lora.train_class_emb = false;
      train::adapt_var(*var, lora, vm["seed"].as<uint64_t>());
    }
    auto select = [&](const std::string& n) {
      if (set_name == "lora") return n.find(".lora_") != std::string::npos;
      return set_name == "full" || dp::is_ada_lin(n);
    };
    for (auto& item : var->named_parameters()) item.value().set_requires_grad(select(item.key()));
    dp::TrainableSet set = dp::TrainableSet::from_module(*var, select);

    Measure base = measure(warmup, iters, [&]() {
      var->zero_grad();
      model::cross_entropy_loss(var->forward(labels, x), targets).mean.backward();
    });
    auto report = [&](const std::string& label, int64_t kk, const Measure& m) {
      const double tr = m.seconds / base.seconds;
      const double mr = base.peak_bytes > 0 ? m.peak_bytes / base.peak_bytes : 0.0;
      std::printf("  %-7s %-3lld %-12s %8lld %10.4f %7.2f %7.1f %7.2f\n", set_name.c_str(),
                  static_cast<long long>(kk), label.c_str(), static_cast<long long>(set.numel()), m.seconds, tr,
                  m.peak_bytes / 1048576.0, mr);
      std::fflush(stdout);
      names.push_back(set_name + "/" + std::to_string(kk) + "/" + label);
      secs.push_back(m.seconds);
      peaks.push_back(m.peak_bytes);
      tratio.push_back(tr);
      mratio.push_back(mr);
      nparams.push_back(set.numel());
      ks.push_back(kk);
    };
    report("non-private", 1, base);

    std::vector<int64_t> augmults{1};
    if (k > 1) augmults.push_back(k);
    for (int64_t kk : augmults) {
      std::vector<int64_t> ids, lot;
      for (int64_t r = 0; r < R; ++r) ids.push_back(r / kk);
      for (int64_t e = 0; e < R / kk; ++e) lot.push_back(e);
      dp::MicroBatch mb{ids, dp::var_row_loss(var, labels, x, targets)};
      for (dp::GradStrategy s : strategies) {
        dp::DpEngine engine(*var, set, dp::EngineOptions{s, rule, 1.0, kk});
        const dp::RunSecret key = dp::RunSecret::generate();
        const dp::NoiseSpec spec{1.0, 1.0, static_cast<double>(lot.size()), &key};
        int64_t step = 0;
        Measure m = measure(warmup, iters, [&]() {
          engine.begin_step(lot);
          engine.feed(mb);
          engine.finish_step(tc, spec, step++);
        });
        std::string label = dp::grad_strategy_name(s);
        if (s == dp::GradStrategy::bk && rule != dp::NormRule::cost) label += "/" + std::string(dp::norm_rule_name(rule));
        report(label, kk, m);
      }
    }
  }

  if (vm.count("out")) {
    io::AtomicH5File out(vm["out"].as<std::string>());
    io::Provenance prov;
    prov.format = "vardp.bench.dp";
    prov.format_version = 1;
    io::write_provenance(out.id(), prov);
    io::h5_write_attr(out.id(), "config", c.describe());
    io::h5_write_attr(out.id(), "threads", static_cast<int64_t>(torch::get_num_threads()));
    io::h5_write_attr(out.id(), "micro_batch", R);
    io::h5_write_attr(out.id(), "augmult", k);
    io::h5_write_attr(out.id(), "norm_rule", dp::norm_rule_name(rule));
    io::h5_write_attr(out.id(), "case_names", names);
    const std::vector<hsize_t> dims{static_cast<hsize_t>(names.size())};
    io::h5_write<double>(out.id(), "step_seconds", secs, dims);
    io::h5_write<double>(out.id(), "peak_bytes", peaks, dims);
    io::h5_write<double>(out.id(), "time_ratio", tratio, dims);
    io::h5_write<double>(out.id(), "memory_ratio", mratio, dims);
    io::h5_write<int64_t>(out.id(), "trainable_params", nparams, dims);
    io::h5_write<int64_t>(out.id(), "case_augmult", ks, dims);
    out.commit();
  }
  return 0;
}

}  // namespace
VARDP_COMMAND("bench-dp", "time and peak memory of DP-SGD steps per per-example-gradient strategy",
              run_bench_dp);
}  // namespace vardp::app
