// vardp train-vqvae: trains the multi-scale VQ-VAE tokenizer of a small model from scratch
// (include/vardp/train/vqvae_training.hpp). One process (LibTorch threads for the cores); the
// result is a vardp HDF5 state dict for `model.vae`.
#include <string>
#include <vector>

#include "app/command.hpp"
#include "app/int_list.hpp"
#include "app/job.hpp"
#include "vardp/train/vqvae_training.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/exit_codes.hpp"
#include "vardp/util/log.hpp"

namespace vardp::app {
namespace {

constexpr const char* kTrainVqvaeUsage =
    "vardp train-vqvae --train T.h5 [--test E.h5] --out VAE.h5 [--patch-nums 1,2,4,8] [--vocab 512] "
    "[--cvae 16] [--ch 32] [--ch-mult 1,2,2] [--steps N] [--batch B] [options]";

int run_train_vqvae(const std::vector<std::string>& args) {
  po::options_description options(kTrainVqvaeUsage);
  options.add_options()("train", po::value<std::string>()->required(), "training dataset (vardp prepare)")(
      "test", po::value<std::string>()->default_value(""), "test dataset: reconstruction error at the end")(
      "out", po::value<std::string>()->required(), "VQ-VAE state dict to write (vardp HDF5)")(
      "patch-nums", po::value<std::string>()->default_value("1,2,4,8"), "token pyramid (last x downsample = image side)")(
      "vocab", po::value<int64_t>()->default_value(512), "codebook size V")(
      "cvae", po::value<int64_t>()->default_value(16), "code dimension Cvae (z_channels)")(
      "ch", po::value<int64_t>()->default_value(32), "base channels (a multiple of 32: GroupNorm(32))")(
      "ch-mult", po::value<std::string>()->default_value("1,2,2"), "channel multipliers; downsample 2^(n-1)")(
      "res-blocks", po::value<int64_t>()->default_value(1), "ResNet blocks per level")(
      "no-attn", po::bool_switch(), "no attention blocks (lowest level and middle)")(
      "steps", po::value<int64_t>()->default_value(3000), "optimizer steps")(
      "batch", po::value<int64_t>()->default_value(32), "images per step")(
      "lr", po::value<double>()->default_value(3e-4), "AdamW peak learning rate (cosine decay)")(
      "warmup", po::value<int64_t>()->default_value(100), "linear warm-up steps")(
      "vq-weight", po::value<double>()->default_value(1.0), "weight of the quantiser loss")(
      "beta", po::value<double>()->default_value(0.25), "commitment weight inside the quantiser loss")(
      "reset-dead-every", po::value<int64_t>()->default_value(200), "steps between codebook resets (0: off)")(
      "hflip", po::bool_switch(), "random horizontal flips")(
      "seed", po::value<uint64_t>()->default_value(0), "seed (initialisation, batches, views)")(
      "log-every", po::value<int64_t>()->default_value(50), "steps between progress lines")(
      "checkpoint-every", po::value<int64_t>()->default_value(500), "steps between resume files (OUT.resume.h5)")(
      "stop-after-step", po::value<int64_t>()->default_value(0), "save the state and exit 75 after this step")(
      "device", po::value<std::string>()->default_value("auto"), "auto, cpu, cuda or cuda:N");
  po::variables_map vm;
  if (!parse_command_line(args, kTrainVqvaeUsage, options, vm)) return 0;
  if (world().size() > 1)
    throw UsageError("train-vqvae runs as one process (it uses every core through LibTorch's threads); start it "
                     "without mpirun/srun or with one task",
                     "vardp train-vqvae");

  train::VqvaeTrainOptions o;
  o.train_path = vm["train"].as<std::string>();
  o.test_path = vm["test"].as<std::string>();
  o.out_path = vm["out"].as<std::string>();
  model::VQVAEConfig& m = o.model;
  m.v_patch_nums = parse_int_list(vm["patch-nums"].as<std::string>(), "--patch-nums");
  m.vocab_size = vm["vocab"].as<int64_t>();
  m.z_channels = vm["cvae"].as<int64_t>();
  m.ch = vm["ch"].as<int64_t>();
  m.ch_mult = parse_int_list(vm["ch-mult"].as<std::string>(), "--ch-mult");
  m.num_res_blocks = vm["res-blocks"].as<int64_t>();
  m.using_sa = m.using_mid_sa = !vm["no-attn"].as<bool>();
  m.beta = vm["beta"].as<double>();
  o.steps = vm["steps"].as<int64_t>();
  o.batch = vm["batch"].as<int64_t>();
  o.lr = vm["lr"].as<double>();
  o.warmup_steps = vm["warmup"].as<int64_t>();
  o.vq_weight = vm["vq-weight"].as<double>();
  o.reset_dead_every = vm["reset-dead-every"].as<int64_t>();
  o.hflip = vm["hflip"].as<bool>();
  o.seed = vm["seed"].as<uint64_t>();
  o.log_every = std::max<int64_t>(1, vm["log-every"].as<int64_t>());
  o.checkpoint_every = vm["checkpoint-every"].as<int64_t>();
  o.stop_after_step = vm["stop-after-step"].as<int64_t>();
  o.device = vm["device"].as<std::string>();
  o.description = "vardp train-vqvae";
  for (const auto& a : args) o.description += " " + a;
  if (m.ch % m.norm_groups != 0)
    throw UsageError(str("--ch must be a multiple of ", m.norm_groups, " (GroupNorm groups), got ", m.ch),
                     "vardp train-vqvae");
  // Exit 75 after a stop signal, as vardp train: the job scripts requeue and the rerun resumes.
  return train::train_vqvae(o).stopped ? kExitRequeue : kExitSuccess;
}

}  // namespace

VARDP_COMMAND("train-vqvae", "train a small multi-scale VQ-VAE tokenizer from scratch (reconstruction + VQ loss)",
              run_train_vqvae);

}  // namespace vardp::app
