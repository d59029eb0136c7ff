// vardp train: adapts a VAR (full / lora / lntune), plain or DP-SGD, on MPI ranks; preemption-safe.
// Exit codes: 0 finished (or already finished), 75 stopped by SIGUSR1/SIGTERM/--max-hours after
// writing a checkpoint (requeue and run again with --resume auto), 2 usage error, 1 other error.
#include <string>
#include <vector>

#include "app/command.hpp"
#include "app/job.hpp"
#include "vardp/train/trainer.hpp"
#include "vardp/util/error.hpp"

namespace vardp::app {
namespace {

int run_train(const std::vector<std::string>& args) {
  po::options_description options("vardp train --config X.toml [options]");
  add_config_options(options);
  options.add_options()(
      "resume", po::value<std::string>()->default_value("auto"),
      "auto: continue from the run directory's latest checkpoint (a finished run exits 0); never: start fresh")(
      "dry-run", po::bool_switch(), "build the models, print parameter counts and the step plan, do not train")(
      "max-hours", po::value<double>(), "checkpoint and exit 75 before this many hours (train.max_hours)")(
      "force-resume", po::bool_switch(), "resume even if the config or world size changed (output.force_resume)");
  po::variables_map vm;
  if (!parse_command_line(args, "vardp train --config X.toml [--set k=v ...] [--resume auto|never] [--dry-run]",
                          options, vm))
    return 0;
  Job job = start_job(vm, "train");
  train::TrainRequest req;
  req.config = job.config;
  req.resume = vm["resume"].as<std::string>();
  if (req.resume != "auto" && req.resume != "never")
    throw UsageError("--resume must be auto or never, got '" + req.resume + "'", "--resume");
  req.dry_run = vm["dry-run"].as<bool>() || job.config.train.dry_run;
  if (vm.count("max-hours")) req.config.train.max_hours = vm["max-hours"].as<double>();
  if (vm["force-resume"].as<bool>()) req.config.output.force_resume = true;
  // The identity of a run for resume checks: the resolved config without the keys that only
  // steer this invocation (they may differ between the original job and its requeued copy).
  config::Config identity = req.config;
  identity.train.dry_run = false;
  identity.train.max_hours = 0;
  identity.output.force_resume = false;
  identity.dist.log_all_ranks = false;
  req.resolved_toml = to_toml(identity);
  return train::run_training(*job.comm, req).exit_code;
}

}  // namespace

VARDP_COMMAND("train", "adapt a VAR (full, LoRA, LNTuning), plain or DP-SGD, on MPI ranks; resumable", run_train);

}  // namespace vardp::app
