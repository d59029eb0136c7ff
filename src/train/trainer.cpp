// The training loop: plain data-parallel training or DP-SGD over MPI ranks, with checkpoints,
// resume and collective preemption stops.
#include "vardp/train/trainer.hpp"

#include <sys/stat.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "vardp/compat/torch_compat.hpp"
#include "vardp/data/batch_tensor.hpp"
#include "vardp/data/reader.hpp"
#include "vardp/data/token_cache.hpp"
#include "vardp/dist/tensor_comm.hpp"
#include "vardp/dp/accountant.hpp"
#include "vardp/dp/accountant_types.hpp"
#include "vardp/dp/calibration.hpp"
#include "vardp/dp/engine.hpp"
#include "vardp/dp/ledger.hpp"
#include "vardp/dp/lot_sampler.hpp"
#include "vardp/dp/secure_noise.hpp"
#include "vardp/io/atomic_file.hpp"
#include "vardp/io/state_dict.hpp"
#include "vardp/model/infer.hpp"
#include "vardp/model/vqvae.hpp"
#include "vardp/train/adaptation.hpp"
#include "vardp/train/checkpoint.hpp"
#include "vardp/train/checkpoint_dir.hpp"
#include "vardp/train/metrics_log.hpp"
#include "vardp/train/optimizer.hpp"
#include "vardp/train/run_model.hpp"
#include "vardp/train/run_secret.hpp"
#include "vardp/train/step_plan.hpp"
#include "vardp/train/stop_request.hpp"
#include "vardp/train/work_split.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/exit_codes.hpp"
#include "vardp/util/log.hpp"
#include "vardp/util/rng.hpp"

namespace vardp::train {
namespace {

using Clock = std::chrono::steady_clock;

// The privacy plan of a DP run.
struct DpPlan {
  double q = 0, sigma = 0, delta = 0;
  int64_t steps = 0;
  dp::AccountantKind accountant = dp::AccountantKind::rdp;
};

DpPlan plan_dp(const config::Config& cfg, int64_t N) {
  const auto& d = cfg.dp;
  DpPlan p;
  p.q = dp_sample_rate(cfg, N);
  p.steps = planned_steps(cfg, N);
  p.delta = d.target_delta ? *d.target_delta : 1.0 / static_cast<double>(N);
  // (epsilon, delta)-DP with delta >= 1/N allows a mechanism that publishes one whole example
  // in N; the paper's default delta = 1/N sits exactly there (docs/privacy.md).
  if (p.delta * static_cast<double>(N) >= 1.0 - 1e-12)
    log::warn("dp: delta = ", p.delta, " is >= 1/N (N = ", N, "): a guarantee that allows releasing one example "
              "outright; use delta << 1/N, e.g. dp.target_delta = ", 0.1 / static_cast<double>(N),
              " or smaller (docs/privacy.md)");
  p.accountant = dp::parse_accountant(d.accountant);
  if (d.noise_multiplier) {
    p.sigma = *d.noise_multiplier;
  } else if (d.target_epsilon) {
    dp::CalibrationRequest req;
    req.target_epsilon = *d.target_epsilon;
    req.delta = p.delta;
    req.sample_rate = p.q;
    req.steps = p.steps;
    req.accountant = p.accountant;
    p.sigma = dp::calibrate_noise_multiplier(req).noise_multiplier;
  } else {
    throw UsageError("a DP run needs dp.noise_multiplier or dp.target_epsilon", "dp");
  }
  if (p.sigma == 0)
    log::warn("dp: noise_multiplier = 0: no noise, epsilon is infinite (kept for tests and audits; every "
              "release of this run says epsilon = inf)");
  return p;
}

// Explicit per-row randomness of a training forward, keyed by (seed, step, example, view) so that
// any rank and any micro-batch split sees the same draws (invariant 6).
model::ForwardOptions row_randomness(const model::VARImpl& var, uint64_t seed, int64_t step,
                                     const std::vector<data::Unit>& units) {
  const int64_t R = static_cast<int64_t>(units.size());
  const auto& dpr = var.drop_path_rates();
  const int64_t depth = static_cast<int64_t>(dpr.size());
  torch::Tensor drop = torch::zeros({R}, torch::kBool);
  torch::Tensor keep = torch::ones({depth, R}, torch::kFloat);
  auto* dptr = drop.data_ptr<bool>();
  auto* kptr = keep.data_ptr<float>();
  const double rate = var.config().cond_drop_rate;
  for (int64_t r = 0; r < R; ++r) {
    const auto& u = units[static_cast<size_t>(r)];
    rng::Stream ls(seed, rng::Purpose::label_dropout, static_cast<uint64_t>(step), static_cast<uint64_t>(u.example),
                   static_cast<uint64_t>(u.view));
    dptr[r] = ls.uniform() < rate;
    rng::Stream ds(seed, rng::Purpose::drop_path, static_cast<uint64_t>(step), static_cast<uint64_t>(u.example),
                   static_cast<uint64_t>(u.view));
    for (int64_t d = 0; d < depth; ++d) kptr[d * R + r] = ds.uniform() < dpr[static_cast<size_t>(d)] ? 0.f : 1.f;
  }
  model::ForwardOptions opt;
  opt.label_drop_mask = drop;
  opt.drop_path_keep = keep;
  return opt;
}

// A tokenised micro-batch: VAR inputs of its units.
struct Tokens {
  torch::Tensor labels, x_BLCv, targets;
};

Tokens tokenize(model::VQVAEImpl& vae, const data::Batch& batch, const torch::Device& dev) {
  torch::NoGradGuard no_grad;
  torch::Tensor img = data::batch_images(batch).to(dev);
  std::vector<torch::Tensor> ids = vae.img_to_idxBl(img);
  Tokens t;
  t.labels = data::batch_labels(batch).to(dev);
  t.x_BLCv = vae.quantize->idxBl_to_var_input(ids);
  t.targets = torch::cat(ids, 1);
  return t;
}

// The same from the token cache: pool views instead of on-the-fly crops, no VQ-VAE encoder.
Tokens tokens_from_cache(model::VQVAEImpl& vae, const data::TokenCache& cache, const std::vector<data::Unit>& units,
                         uint64_t seed, int64_t step, const torch::Device& dev) {
  torch::NoGradGuard no_grad;
  std::vector<std::pair<int64_t, int64_t>> rows;
  std::vector<int64_t> labels;
  for (const auto& u : units) {
    rows.emplace_back(u.example, data::pool_view(seed, step, u.example, u.view, cache.pool_views()));
    labels.push_back(cache.labels()[static_cast<size_t>(u.example)]);
  }
  const int64_t R = static_cast<int64_t>(units.size());
  torch::Tensor all = torch::tensor(cache.read(rows), torch::kLong).view({R, cache.tokens_per_view()}).to(dev);
  std::vector<torch::Tensor> ids;
  int64_t at = 0;
  for (int64_t pn : cache.patch_nums()) {
    ids.push_back(all.slice(1, at, at + pn * pn));
    at += pn * pn;
  }
  Tokens t;
  t.labels = torch::tensor(labels, torch::kLong).to(dev);
  t.x_BLCv = vae.quantize->idxBl_to_var_input(ids);
  t.targets = all;
  return t;
}

// Running sums of one log interval (all ranks' values are reduced at log time).
struct Interval {
  double loss_sum = 0, loss_rows = 0;
  double norm_sum = 0, norm_count = 0, clipped = 0, lot_sum = 0;
  double rows = 0, seconds = 0;
  int64_t steps = 0;
  void reset() { *this = Interval{}; }
};

std::string format_duration(double s) {
  const auto t = static_cast<int64_t>(s);
  std::ostringstream os;
  if (t >= 3600) os << t / 3600 << "h";
  if (t >= 60) os << (t / 60) % 60 << "m";
  os << t % 60 << "s";
  return os.str();
}

}  // namespace

TrainOutcome run_training(dist::Comm& comm, const TrainRequest& req) {
  const config::Config& cfg = req.config;
  const uint64_t seed = static_cast<uint64_t>(cfg.train.seed);
  const bool dp_on = cfg.dp.enabled;
  TrainOutcome outcome;

  torch::Device dev = model::resolve_device(cfg.model.device);
  if (dev.is_cuda() && !dev.has_index()) {  // one GPU per rank of a node
    const int gpus = std::max<int>(1, static_cast<int>(torch::cuda::device_count()));
    dev = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(comm.local_rank() % gpus));
  }

  RunModels m = build_run_models(cfg, req.dry_run);
  const bool have_data = file_exists(cfg.data.train);
  if (!have_data && !req.dry_run)
    throw UsageError(cfg.data.train.empty() ? "data.train is required" : "dataset not found: " + cfg.data.train,
                     "data.train");

  AdaptationReport rep = adapt_var(*m.var, cfg.adapt, seed);
  log::info(rep.summary());
  if (!rep.lora_layers.empty())
    log::info("LoRA r=", cfg.adapt.lora_rank, " alpha=", cfg.adapt.lora_alpha, " on ", cfg.adapt.lora_targets.size(),
              " target groups");

  std::shared_ptr<data::DatasetReader> reader;
  int64_t N = 0;
  if (have_data) {
    reader = std::make_shared<data::DatasetReader>(cfg.data.train);
    N = reader->size();
    VARDP_CHECK(N > 0, cfg.data.train, ": the dataset is empty");
    for (int64_t y : reader->labels())
      if (y < 0 || y >= m.var->config().num_classes)
        throw Error(str("label ", y, " outside [0, ", m.var->config().num_classes,
                        ") of the model's classes (set adapt.num_classes)"),
                    cfg.data.train);
    VARDP_CHECK(reader->resolution() >= cfg.data.image_size, cfg.data.train, ": stored images are ",
                reader->resolution(), " px, smaller than data.image_size ", cfg.data.image_size);
  }

  // The plan.
  DpPlan plan;
  int64_t planned = 0;
  if (have_data) {
    if (dp_on) {
      plan = plan_dp(cfg, N);
      planned = plan.steps;
      log::info("DP-SGD: N=", N, " q=", plan.q, " (expected lot ", plan.q * static_cast<double>(N),
                ") steps=", plan.steps, " sigma=", plan.sigma, " C=", cfg.dp.max_grad_norm, " delta=", plan.delta,
                " k=", cfg.dp.augmult, " accountant=", cfg.dp.accountant,
                " per-example gradients: ", cfg.dp.grad_sample_mode);
    } else {
      planned = planned_steps(cfg, N);
      log::info("plain training: N=", N, " batch=", cfg.train.batch_size, " steps=", planned);
    }
  } else {
    log::warn("dry run: dataset ", cfg.data.train, " not found; no step plan");
  }
  if (req.dry_run) {
    log::info("dry run: trainable_params=", rep.trainable_params, " adapter_params=", rep.adapter_params,
              " class_emb_params=", rep.class_emb_params, " base_params=", rep.base_params, " planned_steps=", planned);
    outcome.steps_done = 0;
    return outcome;
  }

  RankLayout layout{comm.rank(), comm.size(), static_cast<int>(cfg.dist.view_group)};
  check_layout(layout);
  const int64_t k = dp_on ? cfg.dp.augmult : 1;
  VARDP_CHECK(k >= 1, "dp.augmult must be >= 1");
  if (dp_on && cfg.adapt.method == "lora" && cfg.adapt.lora_dropout > 0)
    throw UsageError("adapt.lora_dropout > 0 is not supported with DP (its masks are not keyed per example)",
                     "adapt.lora_dropout");

  m.var->to(dev);
  m.vae->to(dev);
  m.var->train();

  dist::TensorComm world_tc(comm, dev.is_cuda());
  std::unique_ptr<dist::Comm> group_comm;
  std::unique_ptr<dist::TensorComm> group_tc;
  if (layout.view_group > 1) {
    group_comm = comm.split(layout.group(), layout.rank_in_group());
    group_tc = std::make_unique<dist::TensorComm>(*group_comm, dev.is_cuda());
  }

  const std::set<std::string> trained(rep.trainable.begin(), rep.trainable.end());
  const dp::TrainableSet set =
      dp::TrainableSet::from_module(*m.var, [&](const std::string& n) { return trained.count(n) != 0; });
  Optimizer opt(cfg.train, trainable_tensors(*m.var));
  std::unique_ptr<dp::DpEngine> engine;
  if (dp_on)
    engine = std::make_unique<dp::DpEngine>(*m.var, set,
                                            dp::EngineOptions{dp::parse_grad_strategy(cfg.dp.grad_sample_mode),
                                                              dp::NormRule::cost, cfg.dp.max_grad_norm, k});
  dp::PrivacyLedger ledger;
  if (dp_on) ledger.set_target(plan.delta, plan.accountant);

  // Run directory, resume.
  CheckpointDir ckdir(cfg.output.dir, cfg.output.keep_last);
  const std::string metrics_path = cfg.output.dir + "/metrics.h5";
  MetricsLog metrics;
  FlopsTally flops;
  int64_t start = 0;
  if (req.resume != "never" && ckdir.done()) {
    log::info("run ", cfg.output.dir, " is already finished (DONE); nothing to do");
    outcome.steps_done = planned;
    return outcome;
  }
  if (req.resume != "never") {
    // Every rank reads the same marker: a broken one is a collective usage error, never a
    // fresh start over the run's checkpoints.
    try {
      (void)ckdir.latest();
    } catch (const Error& e) {
      throw CollectiveError(e.message(), e.context(), /*usage=*/true);
    }
    // Invariant 4, no second version of a step survives: a complete checkpoint newer than
    // `latest` (killed between its rename and the marker) goes before anything is resumed.
    if (comm.is_root())
      for (const std::string& orphan : ckdir.remove_orphans())
        log::warn("removed ", orphan, ": written after the checkpoint that `latest` names but never committed; "
                  "its steps are replayed with the same lots and noise");
    comm.barrier();
  } else if (dp_on && !ckdir.steps().empty()) {
    // A fresh DP run over an old one's checkpoints would leave two versions of their steps.
    throw CollectiveError("refusing --resume never: " + cfg.output.dir +
                              " holds checkpoints of an earlier run; use a new output.dir or remove the old one",
                          cfg.output.dir, /*usage=*/true);
  }
  std::string resumed_fingerprint;
  if (req.resume != "never") {
    if (auto latest = ckdir.latest()) {
      CheckpointData c = load_checkpoint(*latest);
      // Accounting with no way around it (invariant 4): output.force_resume relaxes the config
      // and rank checks below, never these. Refused rather than recorded as epsilon = infinity:
      // a model whose earlier steps no ledger accounts has no DP guarantee to report.
      if (dp_on) {
        std::string no_dp;
        if (!c.ledger)
          no_dp = "it was written by a non-private run, whose steps no privacy ledger accounts";
        else if (c.ledger->total_steps() < c.step)
          no_dp = str("its ledger accounts ", c.ledger->total_steps(), " DP steps but the model has taken ", c.step);
        else if (c.secret_source.empty())
          no_dp = "its noise and lots were keyed by the public train.seed (checkpoint format 1, before secret coins): "
                  "anyone with its config can regenerate them, so its steps are not private";
        if (!no_dp.empty())
          throw CollectiveError("refusing to resume " + *latest + " as a DP run: " + no_dp +
                                    " (output.force_resume does not override this; start a new run)",
                                cfg.output.dir, /*usage=*/true);
        resumed_fingerprint = c.secret_fingerprint;
      }
      std::string why;
      if (c.config_toml != req.resolved_toml)
        why = "the configuration differs from the checkpoint's";
      else if (c.world_size != comm.size())
        why = str("the checkpoint was written by ", c.world_size, " ranks, this job has ", comm.size());
      if (!why.empty() && !cfg.output.force_resume)
        throw CollectiveError("refusing to resume " + *latest + ": " + why + " (set output.force_resume = true)",
                              cfg.output.dir, /*usage=*/true);
      if (!why.empty()) log::warn("resuming although ", why, " (output.force_resume)");
      torch::NoGradGuard no_grad;
      for (int64_t i = 0; i < set.size(); ++i) {
        VARDP_CHECK(c.trainable.contains(set.name(i)), *latest, " has no trained tensor '", set.name(i), "'");
        const torch::Tensor& src = c.trainable.at(set.name(i));
        VARDP_CHECK(src.sizes() == set.tensor(i).sizes(), *latest, ": '", set.name(i), "' has shape ", src.sizes());
        set.tensor(i).copy_(src);
      }
      VARDP_CHECK(static_cast<int64_t>(c.trainable.size()) == set.size(), *latest, " holds ", c.trainable.size(),
                  " trained tensors, this run trains ", set.size());
      opt.load_state(c.optimizer, c.optimizer_steps);
      if (c.ledger && dp_on) {
        ledger = *c.ledger;
        // The spent epsilon is reported at THIS run's target delta and accountant.
        ledger.set_target(plan.delta, plan.accountant);
      }
      if (c.ledger && !dp_on)
        log::warn("resuming a DP checkpoint as a plain run: the result is not differentially private");
      start = c.step;
      flops.total_flops = c.total_flops;
      flops.wall_seconds = c.wall_seconds;
      if (comm.is_root() && file_exists(cfg.output.dir + "/flops.h5"))
        flops.restore_steps(read_flops_steps(cfg.output.dir + "/flops.h5"), start);
      if (comm.is_root() && file_exists(metrics_path)) {
        metrics = MetricsLog::read(metrics_path);
        metrics.truncate_after(start);
      }
      if (start > planned)
        throw CollectiveError(str(*latest, " is at step ", start, ", beyond the ", planned,
                                  " steps this run plans; nothing to resume"),
                              cfg.output.dir, /*usage=*/true);
      log::info("resumed from ", *latest, " at step ", start, " of ", planned);
    }
  }
  if (comm.is_root()) {
    ::mkdir(cfg.output.dir.c_str(), 0755);
    io::write_text_atomic(cfg.output.dir + "/config.toml", req.resolved_toml);
  }
  // The mechanism's coins (invariant 6): a run secret established before the first step.
  std::optional<RunSecretInfo> secret;
  if (dp_on) {
    secret = establish_run_secret(comm, cfg.dp.secret_file, cfg.output.dir, /*may_create=*/start == 0);
    if (start > 0 && resumed_fingerprint != secret->secret.fingerprint())
      throw CollectiveError("refusing to resume: the run secret (" + secret->path +
                                ") is not the one the checkpoint's steps were drawn with, so replayed steps would "
                                "get other lots and noise",
                            cfg.output.dir, /*usage=*/true);
    log::info("DP coins: run secret ",
              secret->source == "supplied" ? "pinned by dp.secret_file (reproducible: for tests and audits only)"
                                           : "drawn from the OS for this run",
              ", in ", secret->path, " (private run state: never publish it)");
  }
  const std::string base_sha = comm.is_root() && file_exists(cfg.model.var) ? file_sha256(cfg.model.var) : "";

  io::Provenance prov{"", 1, req.resolved_toml, comm.size()};
  auto write_outputs = [&](int64_t step_done) {
    const auto w0 = Clock::now();
    if (comm.is_root()) {
      CheckpointData c;
      c.step = step_done;
      c.planned_steps = planned;
      c.seed = cfg.train.seed;
      c.method = cfg.adapt.method;
      c.base_vae = cfg.model.vae;
      c.base_var = cfg.model.var;
      c.base_var_sha256 = base_sha;
      c.num_classes = m.var->config().num_classes;
      c.noise_multiplier = dp_on ? plan.sigma : 0.0;
      c.sample_rate = dp_on ? plan.q : 0.0;
      c.optimizer_steps = opt.steps_taken();
      c.total_flops = flops.total_flops;
      c.wall_seconds = flops.wall_seconds;
      if (secret) {
        c.secret_source = secret->source;
        c.secret_fingerprint = secret->secret.fingerprint();
      }
      for (int64_t i = 0; i < set.size(); ++i) c.trainable.insert(set.name(i), set.tensor(i).detach().cpu());
      c.optimizer = opt.state();
      if (dp_on) c.ledger = ledger;
      save_checkpoint(ckdir.path_for_step(step_done), c, prov);
      // metrics.h5 and flops.h5: the attributes of docs/formats/run.md.
      const auto& vc = m.var->config();
      std::map<std::string, int64_t> ai{
          {"dp_enabled", dp_on ? 1 : 0},
          {"augmult", k},
          {"trainable_params", rep.trainable_params},
          {"total_params", model::count_parameters(*m.var)},
          {"total_steps", planned},
          {"dataset_size", N},
          {"num_classes", vc.num_classes},
          {"model_depth", vc.depth},
          {"batch_size", dp_on ? static_cast<int64_t>(std::llround(plan.q * N)) : cfg.train.batch_size},
          {"diagnostics_not_private", dp_on ? 1 : 0},
          {"step", step_done}};
      std::map<std::string, double> ad;
      std::map<std::string, std::string> as{{"method", cfg.adapt.method},
                                            {"model", str("VAR-d", vc.depth)},
                                            {"dataset", reader->info().source},
                                            {"dataset_file", cfg.data.train},
                                            {"base_var", cfg.model.var}};
      if (dp_on) {
        ad = {{"noise_multiplier", plan.sigma},
              {"sample_rate", plan.q},
              {"delta", plan.delta},
              {"max_grad_norm", cfg.dp.max_grad_norm}};
        if (cfg.dp.target_epsilon) ad["target_epsilon"] = *cfg.dp.target_epsilon;
        as["accountant"] = cfg.dp.accountant;
      }
      metrics.write(metrics_path, prov, ai, ad, as, {{"lora_targets", cfg.adapt.lora_targets}},
                    dp_on ? &ledger : nullptr);
      write_flops(cfg.output.dir + "/flops.h5", prov, flops, ai, as, dp_on ? &ledger : nullptr);
      ckdir.mark_latest(step_done);
    }
    comm.barrier();
    flops.phase_seconds["checkpoint"] += std::chrono::duration<double>(Clock::now() - w0).count();
  };

  // bf16 autocast (model.dtype = "bfloat16") on CUDA for plain training. DP runs stay in float32:
  // per-example norms decide the clipping that the privacy guarantee rests on, and the engine's
  // Gram/instantiation products are checked against the reference in float32.
  if (cfg.model.dtype != "float32" && cfg.model.dtype != "bfloat16")
    throw UsageError("model.dtype must be float32 or bfloat16, got '" + cfg.model.dtype + "'", "model.dtype");
  const bool autocast = cfg.model.dtype == "bfloat16" && dev.is_cuda() && !dp_on;
  if (cfg.model.dtype == "bfloat16" && !autocast)
    log::warn("model.dtype = bfloat16 is used for plain training on CUDA only; this run computes in float32");

  install_stop_signal_handlers();
  StopPolicy stop(cfg.train.max_hours);
  // Analytic FLOPs of each step (vardp profile's model); flops_per_row: executed FLOPs per
  // example-view of the last step, for the TFLOP/s of the log line.
  const profile::TrainingFlopModel flop_model = training_flop_model(cfg, *m.var, m.vae->config());
  double flops_per_row = 0;
  Interval iv;
  const auto run_t0 = Clock::now();
  double last_step_s = 0;
  double last_loss = 0;
  const int64_t mb_size = std::max<int64_t>(1, cfg.train.micro_batch);
  std::unique_ptr<data::TokenCache> cache;
  if (!cfg.data.token_cache.empty()) {
    cache = std::make_unique<data::TokenCache>(cfg.data.token_cache);
    const std::string vae_sha = comm.broadcast(comm.is_root() ? file_sha256(cfg.model.vae) : std::string(), 0);
    const std::string& tc = cfg.data.token_cache;
    VARDP_CHECK(cache->num_examples() == N && cache->labels() == reader->labels() &&
                    cache->dataset_images_sha256() == reader->info().images_sha256,
                tc, " was not made from ", cfg.data.train, " (examples, labels or image hash differ)");
    VARDP_CHECK(cache->patch_nums() == m.var->config().patch_nums && cache->image_size() == cfg.data.image_size, tc,
                " has other patch_nums or image size than the model");
    // Invariant 5: the tokens must come from the configured PUBLIC VQ-VAE; a cache made with
    // another tokenizer would train on something other than what the run claims.
    if (cache->vae_sha256() != vae_sha)
      throw UsageError(str(tc, " was made with a VQ-VAE whose SHA-256 is ", cache->vae_sha256().substr(0, 16),
                           "..., not the configured model.vae ", cfg.model.vae, " (", vae_sha.substr(0, 16),
                           "...); make the cache again with vardp tokenize --vae ", cfg.model.vae),
                       tc);
    log::info("token cache ", tc, ": ", cache->pool_views(), " pool views per example (VQ-VAE encoder skipped)");
  }
  // Rank 0 draws the next step's noise in the background while a step computes: it does not
  // depend on data (invariant 2), only on (secret, step).
  std::unique_ptr<dp::NoisePrefetcher> noise_ahead;
  if (dp_on && comm.is_root() && plan.sigma > 0 && start < planned) {
    noise_ahead = std::make_unique<dp::NoisePrefetcher>(secret->secret, static_cast<uint64_t>(set.numel()),
                                                        plan.sigma * cfg.dp.max_grad_norm);
    noise_ahead->prefetch(static_cast<uint64_t>(start));
  }
  // flops.h5 is releasable: a DP run records the PLANNED cost of a step (expected lot q*N), never
  // one derived from the realised lot size (invariant 5).
  const profile::StepFlops planned_dp_step_flops =
      dp_on ? flop_model.step(step_shape(std::llround(plan.q * static_cast<double>(N)), k, true, layout, mb_size))
            : profile::StepFlops{};
  const size_t prefetch_depth = static_cast<size_t>(std::max<int64_t>(1, cfg.data.prefetch));
  data::Prefetcher prefetcher(reader, prefetch_depth);
  const data::ViewSpec view_base{true, static_cast<int>(cfg.data.image_size), cfg.data.hflip, seed, 0};

  for (int64_t step = start; step < planned; ++step) {
    const auto t0 = Clock::now();
    const double lr = learning_rate(cfg.train, step, planned);
    data::ViewSpec vs = view_base;
    vs.step = step;
    double loss_sum = 0, loss_rows = 0;
    auto phase = [&](const char* name, Clock::time_point a, Clock::time_point b) {
      flops.phase_seconds[name] += std::chrono::duration<double>(b - a).count();
    };
    // This rank's units in micro-batches; the prefetcher reads and crops the next ones on its
    // thread while the current one computes.
    auto run_micro_batches = [&](const std::vector<data::Unit>& units, auto&& consume) {
      std::vector<std::vector<data::Unit>> mbs;
      for (size_t lo = 0; lo < units.size(); lo += static_cast<size_t>(mb_size)) {
        const size_t hi = std::min(units.size(), lo + static_cast<size_t>(mb_size));
        mbs.emplace_back(units.begin() + static_cast<std::ptrdiff_t>(lo),
                         units.begin() + static_cast<std::ptrdiff_t>(hi));
      }
      size_t submitted = 0;
      auto top_up = [&]() {  // images only; the token cache is read in place
        while (!cache && submitted < mbs.size() && prefetcher.outstanding() < prefetch_depth)
          prefetcher.submit(mbs[submitted++], vs);
      };
      for (const auto& mb : mbs) {
        top_up();
        const auto p0 = Clock::now();
        auto p1 = p0;
        Tokens tok;
        if (cache) {
          tok = tokens_from_cache(*m.vae, *cache, mb, seed, step, dev);
          p1 = Clock::now();
          phase("data", p0, p1);
        } else {
          data::Batch batch = prefetcher.next();
          top_up();
          p1 = Clock::now();
          phase("data", p0, p1);
          tok = tokenize(*m.vae, batch, dev);
        }
        const auto p2 = Clock::now();
        if (!cache) phase("tokenize", p1, p2);
        consume(mb, tok, row_randomness(*m.var, seed, step, mb));
        phase("forward_backward", p2, Clock::now());
      }
    };

    double lot_size = 0, mean_norm = 0, clip_frac = 0;
    if (dp_on) {
      // DP-SGD step (privacy argument: engine.hpp; the lot is Poisson(q) from the secret
      // (secret, lot_membership, step) stream, the same on every rank; the noise is drawn once
      // on rank 0 from the secret (secret, gaussian_noise, step) stream).
      std::vector<int64_t> lot = dp::poisson_lot(secret->secret, step, N, plan.q);
      engine->begin_step(lot);
      run_micro_batches(
          dp_units(lot, k, layout), [&](const std::vector<data::Unit>& mb, Tokens& tok, model::ForwardOptions fo) {
            std::vector<int64_t> ids;
            for (const auto& u : mb) ids.push_back(u.example);
            auto inner = dp::var_row_loss(m.var, tok.labels, tok.x_BLCv, tok.targets, fo, cfg.train.label_smooth);
            const int64_t R = static_cast<int64_t>(mb.size());
            dp::MicroBatch micro{ids, [&, inner, R](const torch::Tensor& rows) mutable {
                                   torch::Tensor l = inner(rows);
                                   if (rows.size(0) == R) {  // diagnostics from the full-batch call only
                                     loss_sum += l.detach().sum().item<double>();
                                     loss_rows += static_cast<double>(R);
                                   }
                                   return l;
                                 }};
            engine->feed(micro);
          });
      const auto c0 = Clock::now();
      if (group_tc) engine->reduce_view_group(*group_tc);
      engine->finish_step(world_tc,
                          dp::NoiseSpec{plan.sigma, cfg.dp.max_grad_norm, plan.q * static_cast<double>(N),
                                        &secret->secret, noise_ahead.get()},
                          step);
      if (noise_ahead && step + 1 < planned) noise_ahead->prefetch(static_cast<uint64_t>(step + 1));
      // Every step is accounted, empty lots included (invariant 4). Replay rule: a step replayed
      // after a resume draws the identical lot and noise (same secret, same step), and the
      // training state it starts from is the checkpoint's, so it reproduces the identical
      // release; it is counted once: the checkpoint's ledger does not contain the lost steps.
      ledger.add_steps(plan.q, plan.sigma, 1);
      phase("clip_noise_allreduce", c0, Clock::now());
      const auto& st = engine->stats();
      lot_size = static_cast<double>(st.lot_size);
      mean_norm = st.mean_norm;
      clip_frac = st.clip_fraction;
      iv.norm_sum += st.mean_norm * static_cast<double>(st.examples);
      iv.norm_count += static_cast<double>(st.examples);
      iv.clipped += st.clip_fraction * static_cast<double>(st.examples);
    } else {
      std::vector<int64_t> batch = plain_batch(seed, step, N, cfg.train.batch_size);
      const double B = static_cast<double>(batch.size());
      for (const auto& p : set.tensors())
        if (p.grad().defined()) p.mutable_grad().zero_();
      run_micro_batches(
          plain_units(batch, layout), [&](const std::vector<data::Unit>&, Tokens& tok, model::ForwardOptions fo) {
            compat::CudaAutocastScope mixed(autocast);
            torch::Tensor logits = m.var->forward(tok.labels, tok.x_BLCv, fo);
            torch::Tensor per_ex = model::cross_entropy_loss(logits, tok.targets, cfg.train.label_smooth).per_example;
            loss_sum += per_ex.detach().sum().item<double>();
            loss_rows += static_cast<double>(per_ex.size(0));
            per_ex.sum().div(B).backward();
          });
      std::vector<torch::Tensor> grads;
      for (const auto& p : set.tensors()) grads.push_back(p.grad());
      const auto c0 = Clock::now();
      torch::Tensor flat = set.flatten(grads).contiguous();
      world_tc.all_reduce(flat);
      const double norm = flat.norm().item<double>();
      if (cfg.train.grad_clip > 0 && norm > cfg.train.grad_clip) flat.mul_(cfg.train.grad_clip / (norm + 1e-6));
      set.set_grads(flat);
      phase("allreduce", c0, Clock::now());
      lot_size = B;
      mean_norm = norm;
      iv.norm_sum += norm;
      iv.norm_count += 1;
    }
    const auto o0 = Clock::now();
    opt.step(lr);
    phase("optimizer", o0, Clock::now());

    // Diagnostics over all ranks.
    double sums[2] = {loss_sum, loss_rows};
    comm.all_reduce(sums, 2, dist::DType::f64, dist::ReduceOp::sum);
    const double step_loss = sums[1] > 0 ? sums[0] / sums[1] : std::nan("");
    last_step_s = std::chrono::duration<double>(Clock::now() - t0).count();
    iv.loss_sum += sums[0];
    iv.loss_rows += sums[1];
    iv.lot_sum += lot_size;
    iv.rows += sums[1];
    iv.seconds += last_step_s;
    iv.steps += 1;
    const int64_t done = step + 1;
    // Analytic FLOPs of the step all ranks ran: the paper's count apart from DP extras and optimizer.
    const profile::StepFlops step_flops =
        flop_model.step(step_shape(static_cast<int64_t>(lot_size), k, dp_on, layout, mb_size));
    flops.add_step(done, dp_on ? planned_dp_step_flops : step_flops);
    flops_per_row = step_flops.executed() / std::max(1.0, step_flops.rows);
    flops.wall_seconds += last_step_s;
    if (comm.is_root()) {
      metrics.add("loss", done, step_loss);
      metrics.add("grad_norm", done, mean_norm);
      metrics.add("lot_size", done, lot_size);
      metrics.add("lr", done, lr);
      metrics.add("step_time", done, last_step_s);
      metrics.add("samples_per_s", done, sums[1] / std::max(1e-9, last_step_s));
      if (dp_on) metrics.add("clip_fraction", done, clip_frac);
    }
    const bool last = done == planned;
    if (done % std::max<int64_t>(1, cfg.train.log_every) == 0 || last) {
      double eps = 0;
      if (dp_on) {
        try {
          eps = ledger.epsilon().epsilon;
        } catch (const std::exception& e) {
          eps = std::nan("");
        }
        if (comm.is_root()) metrics.add("epsilon", done, eps);
      }
      last_loss = iv.loss_rows > 0 ? iv.loss_sum / iv.loss_rows : std::nan("");
      const double sps = iv.rows / std::max(1e-9, iv.seconds);
      const double elapsed = std::chrono::duration<double>(Clock::now() - run_t0).count();
      const double eta = elapsed / static_cast<double>(done - start) * static_cast<double>(planned - done);
      std::ostringstream line;
      // Invariant 5: in a DP run everything after "non-private:" is a diagnostic of private data
      // (losses, norms, clip fraction, realised lot size, timings), not covered by epsilon.
      line << "step " << done << "/" << planned;
      if (dp_on) line << " eps " << eps;
      line << " lr " << lr << (dp_on ? " | non-private:" : "") << " loss " << last_loss << " grad_norm "
           << (iv.norm_count > 0 ? iv.norm_sum / iv.norm_count : 0.0);
      if (dp_on)
        line << " clip " << (iv.norm_count > 0 ? iv.clipped / iv.norm_count : 0.0) << " lot "
             << iv.lot_sum / static_cast<double>(iv.steps);
      line << " ms/step " << 1000.0 * iv.seconds / static_cast<double>(iv.steps) << " samples/s " << sps
           << " TFLOP/s " << sps * flops_per_row / 1e12 << " ETA " << format_duration(eta);
      log::info(line.str());
      iv.reset();
    }
    outcome.steps_done = done;
    if (last) break;
    if (cfg.output.checkpoint_every > 0 && done % cfg.output.checkpoint_every == 0) write_outputs(done);
    if (stop.should_stop(comm, last_step_s)) {
      log::info("stop requested (", stop.reason(), ") after step ", done, ": writing a checkpoint and exiting ",
                kExitRequeue, " for requeue");
      write_outputs(done);
      outcome.exit_code = kExitRequeue;
      return outcome;
    }
  }
  write_outputs(planned);
  if (dp_on) {
    const auto rep_eps = ledger.epsilon();
    outcome.epsilon = rep_eps.epsilon;
    log::info("privacy spent: epsilon = ", rep_eps.epsilon, " at delta = ", plan.delta, " (", cfg.dp.accountant, ", ",
              ledger.total_steps(), " steps, sigma ", plan.sigma, ", q ", plan.q, ")");
  }
  if (comm.is_root())
    ckdir.mark_done(str("steps ", planned, "\nepsilon ", outcome.epsilon, "\nloss ", last_loss,
                        dp_on ? " (non-private diagnostic)" : "", "\n"));
  comm.barrier();
  outcome.final_loss = last_loss;
  outcome.steps_done = planned;
  log::info("training finished: ", planned, " steps, final loss ", last_loss, "; outputs in ", cfg.output.dir);
  return outcome;
}

}  // namespace vardp::train
