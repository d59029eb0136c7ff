// vardp profile: the training FLOPs of a configuration, per module and example-view, per step and
// for the whole planned run (the paper's count: VQ-VAE tokenisation + VAR forward + backward over
// all steps), with the DP-SGD extras and the optimizer reported apart (profile/training_flops.hpp).
// Needs no weights: without the checkpoint files the models are built from model.depth,
// model.patch_nums and the VQ-VAE defaults (V = 4096, Cvae = 32), shapes only; the dataset size
// comes from data.train when the file exists, else from --dataset-size. With --out the profile
// goes to an HDF5 file (format "vardp.profile", docs/formats/profile.md).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "app/command.hpp"
#include "app/job.hpp"
#include "vardp/data/reader.hpp"
#include "vardp/profile/profile_file.hpp"
#include "vardp/train/adaptation.hpp"
#include "vardp/train/metrics_log.hpp"
#include "vardp/train/run_model.hpp"
#include "vardp/train/step_plan.hpp"
#include "vardp/train/work_split.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::app {
namespace {

constexpr const char* kProfileUsage =
    "vardp profile --config X.toml [--set k=v ...] [--dataset-size N] [--ranks P] [--out F.h5]";

// The run's step plan (train/step_plan.hpp, as the trainer makes it) and the examples per step.
struct StepPlan {
  int64_t steps = 0;
  double q = 0;             // DP sample rate
  int64_t per_step = 0;     // DP: expected lot round(q N); plain: batch_size
  int64_t short_steps = 0;  // plain: steps that take the smaller last batch of an epoch
  int64_t short_batch = 0;
};

StepPlan plan_steps(const config::Config& cfg, int64_t N) {
  StepPlan p;
  p.steps = train::planned_steps(cfg, N);
  if (cfg.dp.enabled) {
    p.q = train::dp_sample_rate(cfg, N);
    p.per_step = std::llround(p.q * static_cast<double>(N));
  } else {
    const int64_t B = cfg.train.batch_size;
    const int64_t per_epoch = train::steps_per_epoch(N, B);
    p.per_step = std::min(B, N);
    if (N % B != 0) {  // step t takes batch t mod per_epoch of its epoch; the last one is short
      p.short_batch = N % B;
      p.short_steps = p.steps / per_epoch;
    }
  }
  return p;
}

std::string gflop(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v / 1e9);
  return buf;
}

void print_table(const profile::TrainingFlopModel& model, const profile::StepFlops& step) {
  const double rows = std::max(1.0, step.rows);
  std::printf("GFLOP per example-view (DP: the step's extra / its example-views)\n");
  std::printf("%-28s %5s %11s %11s %11s %11s\n", "module", "n", "forward", "bwd input", "bwd weight", "DP extra");
  for (const auto& m : step.modules) {
    if (m.forward == 0 && m.backward() == 0 && m.dp_extra == 0) continue;
    std::printf("%-28s %5lld %11s %11s %11s %11s\n", m.name.c_str(), static_cast<long long>(m.instances),
                gflop(m.forward).c_str(), gflop(m.backward_input).c_str(), gflop(m.backward_weight).c_str(),
                gflop(m.dp_extra / rows).c_str());
  }
  std::printf("per example-view: tokenize %s, VAR forward %s, VAR backward %s, DP extra %s GFLOP\n",
              gflop(model.tokenize_per_view()).c_str(), gflop(model.forward_per_view()).c_str(),
              gflop(model.backward_per_view()).c_str(), gflop(step.dp_extra / rows).c_str());
}

void print_totals(const char* what, const profile::StepFlops& f) {
  std::printf(
      "%s: total (tokenize + forward + backward) %.6g PFLOP [tokenize %.6g, forward %.6g, backward %.6g]; "
      "DP extra %.6g PFLOP (matmul %.6g); optimizer %.6g PFLOP; executed %.6g PFLOP\n",
      what, f.total() / 1e15, f.tokenize / 1e15, f.forward / 1e15, f.backward / 1e15, f.dp_extra / 1e15,
      f.dp_extra_matmul / 1e15, f.optimizer / 1e15, f.executed() / 1e15);
}

int run_profile(const std::vector<std::string>& args) {
  po::options_description options(kProfileUsage);
  add_config_options(options);
  options.add_options()("dataset-size", po::value<int64_t>(), "N, training examples, when data.train does not exist")(
      "ranks", po::value<int64_t>()->default_value(1), "MPI ranks of the planned job (micro-batch layout, optimizer)")(
      "out", po::value<std::string>()->default_value(""), "write the profile to this HDF5 file");
  po::variables_map vm;
  if (!parse_command_line(args, kProfileUsage, options, vm)) return 0;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string resolved_from = vm["config"].as<std::string>();
  config::Config cfg = load_config(config_sources(vm));
  const int64_t ranks = vm["ranks"].as<int64_t>();
  if (ranks < 1) throw UsageError("--ranks must be >= 1", "--ranks");
  train::RankLayout layout{0, static_cast<int>(ranks), static_cast<int>(cfg.dist.view_group)};
  train::check_layout(layout);

  int64_t N = 0;
  if (train::file_exists(cfg.data.train)) {
    N = data::DatasetReader(cfg.data.train).size();
    if (vm.count("dataset-size") && vm["dataset-size"].as<int64_t>() != N)
      throw UsageError(
          str("--dataset-size ", vm["dataset-size"].as<int64_t>(), " but ", cfg.data.train, " holds ", N, " examples"),
          "--dataset-size");
  } else if (vm.count("dataset-size")) {
    N = vm["dataset-size"].as<int64_t>();
  } else {
    throw UsageError("data.train '" + cfg.data.train + "' does not exist: give --dataset-size N", "--dataset-size");
  }
  if (N < 1) throw UsageError("the dataset size must be >= 1", "--dataset-size");

  // Shapes only when the weight files are absent (the placeholders of configs/experiments/).
  train::RunModels m = train::build_run_models(cfg, /*dry_run=*/true);
  model::VQVAEConfig vq;
  if (m.vae) {
    vq = m.vae->config();
  } else {
    vq.v_patch_nums = cfg.model.patch_nums;
    if (vq.image_size() != cfg.data.image_size)
      throw UsageError(str("the default VQ-VAE makes ", vq.image_size(),
                           " px images from patch_nums but data.image_size is ", cfg.data.image_size),
                       "data.image_size");
  }
  const train::AdaptationReport rep = train::adapt_var(*m.var, cfg.adapt, static_cast<uint64_t>(cfg.train.seed));
  const profile::TrainingFlopModel model = train::training_flop_model(cfg, *m.var, vq);

  const StepPlan plan = plan_steps(cfg, N);
  const int64_t k = cfg.dp.enabled ? cfg.dp.augmult : 1;
  const int64_t mb = std::max<int64_t>(1, cfg.train.micro_batch);
  profile::RunProfile p;
  p.steps = plan.steps;
  p.step = model.step(train::step_shape(plan.per_step, k, cfg.dp.enabled, layout, mb));
  p.run = p.step.scaled(static_cast<double>(plan.steps - plan.short_steps));
  p.run.modules = p.step.modules;
  if (plan.short_steps > 0) {
    const profile::StepFlops last = model.step(train::step_shape(plan.short_batch, 1, false, layout, mb));
    p.run += last.scaled(static_cast<double>(plan.short_steps));
  }

  const model::VARConfig& vc = m.var->config();
  std::printf("vardp profile: VAR-d%lld (L=%lld, C=%lld, V=%lld), adapt %s, %s, %lld rank(s), micro-batch %lld\n",
              static_cast<long long>(vc.depth), static_cast<long long>(vc.L()), static_cast<long long>(vc.embed_dim),
              static_cast<long long>(vc.vocab_size), cfg.adapt.method.c_str(),
              cfg.dp.enabled ? str("DP-SGD (", cfg.dp.grad_sample_mode, ", k=", k, ")").c_str() : "non-private",
              static_cast<long long>(ranks), static_cast<long long>(mb));
  std::printf("trained %lld of %lld parameters; N=%lld, %s; %lld steps%s\n",
              static_cast<long long>(rep.trainable_params), static_cast<long long>(model::count_parameters(*m.var)),
              static_cast<long long>(N),
              cfg.dp.enabled ? str("expected lot ", plan.per_step, " (q=", plan.q, ")").c_str()
                             : str("batch ", plan.per_step).c_str(),
              static_cast<long long>(plan.steps), cfg.data.token_cache.empty() ? "" : ", token cache");
  print_table(model, p.step);
  print_totals(str("per step (", p.step.rows, " example-views)").c_str(), p.step);
  print_totals(str("per run (", plan.steps, " steps)").c_str(), p.run);

  const std::string out = vm["out"].as<std::string>();
  if (!out.empty()) {
    p.attrs_string = {{"method", cfg.adapt.method},
                      {"model", str("VAR-d", vc.depth)},
                      {"grad_sample_mode", cfg.dp.enabled ? cfg.dp.grad_sample_mode : ""},
                      {"config_file", resolved_from}};
    p.attrs_int = {{"dp_enabled", cfg.dp.enabled ? 1 : 0},
                   {"augmult", k},
                   {"dataset_size", N},
                   {"ranks", ranks},
                   {"micro_batch", mb},
                   {"examples_per_step", plan.per_step},
                   {"token_cache", cfg.data.token_cache.empty() ? 0 : 1},
                   {"model_depth", vc.depth},
                   {"tokens", vc.L()},
                   {"trainable_params", rep.trainable_params},
                   {"total_params", model::count_parameters(*m.var)}};
    if (cfg.dp.enabled) p.attrs_double["sample_rate"] = plan.q;
    profile::write_profile(out, io::Provenance{"", 1, to_toml(cfg), 1}, model, p);
    std::printf("wrote %s\n", out.c_str());
  }
  std::printf("profile computed in %.2f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

}  // namespace

VARDP_COMMAND("profile", "training FLOPs of a config per module, step and run (paper's count, DP extras apart)",
              run_profile);

}  // namespace vardp::app
