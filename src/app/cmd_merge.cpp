// vardp merge: a full VAR state dict from a run (base + trained tensors, LoRA folded into the
// weights: W + (alpha/r) B A), with the official key names, so that every tool that takes a VAR
// checkpoint (vardp sample/score/inspect, or the official Python code after conversion) can use
// an adapted model. Output: vardp HDF5 state dict (format "vardp.state_dict").
//
// The merged model is RELEASABLE: besides the tensors and the provenance it carries the privacy
// stamp of train/release.hpp (privacy_source "run", dp_enabled, epsilon, delta, accountant and,
// for a DP run, the checkpoint's ledger at /privacy; invariant 4), so that every file made from
// it later (vardp sample --var) can state the guarantee too.
#include <torch/torch.h>

#include <string>
#include <vector>

#include "app/command.hpp"
#include "app/config_loader.hpp"
#include "app/job.hpp"
#include "app/run_dir.hpp"
#include "vardp/io/module_state.hpp"
#include "vardp/io/state_dict.hpp"
#include "vardp/model/linear.hpp"
#include "vardp/train/release.hpp"
#include "vardp/train/run_model.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::app {
namespace {

int run_merge(const std::vector<std::string>& args) {
  po::options_description options("vardp merge --run DIR --out VAR.h5");
  options.add_options()("run", po::value<std::string>()->required(),
                        "run directory of vardp train (its config.toml and latest checkpoint)")(
      "checkpoint", po::value<std::string>()->default_value(""), "a checkpoint file instead of the run's latest")(
      "out", po::value<std::string>()->required(), "merged VAR state dict to write (vardp HDF5)");
  po::variables_map vm;
  if (!parse_command_line(args, "vardp merge --run DIR [--checkpoint FILE] --out VAR.h5", options, vm)) return 0;
  const std::string run = vm["run"].as<std::string>();
  LoadedRun loaded = load_run(run, vm["checkpoint"].as<std::string>());
  const config::Config& cfg = loaded.config;
  const std::string& ck = loaded.checkpoint;
  train::TrainedModel& t = loaded.model;
  int64_t merged = 0;
  for (auto& item : t.models.var->named_modules("", false))
    if (auto* lin = dynamic_cast<model::LinearImpl*>(item.value().get()); lin && lin->has_lora()) {
      lin->merge_lora();
      ++merged;
    }
  const io::StateDict sd = io::state_dict_of(*t.models.var);
  io::Provenance prov;
  prov.config_toml = to_toml(cfg);
  const std::string out = vm["out"].as<std::string>();
  const train::ReleasePrivacy privacy = train::ReleasePrivacy::of_run(t.ledger);
  io::save_state_dict_h5(sd, out, prov, [&](hid_t f) { train::write_release_privacy(f, privacy); });
  log::info("merge: ", ck, " (step ", t.step, ", ", t.adaptation.method, ", ", merged, " LoRA layers folded) -> ", out,
            " (", sd.size(), " tensors, ", t.ledger ? "DP" : "non-private", ")");
  return 0;
}

}  // namespace

VARDP_COMMAND("merge", "write a run's adapted VAR as one full state dict (LoRA folded in)", run_merge);

}  // namespace vardp::app
