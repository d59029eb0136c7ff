// vardp sample: class-conditional images from a VAR model (the official
// autoregressive_infer_cfg: KV cache, CFG ramp t = cfg*si/(SN-1), top-k / top-p, seeded draws).
//
// Labels are the --classes list, each repeated --per-class times (class-major). Batches of
// --batch images are sampled in order; batch b uses a generator seeded with seed + b, so one
// batch with --seed S draws exactly what the official code draws with g_seed=S (same device and
// PyTorch build). With --top-k 1 the result is deterministic.
//
// Output O.h5 (format "vardp.samples", version 1), written atomically:
//   /images  uint8 (n, H, W, 3)  RGB, round(255 * x) of the model's [0, 1] output
//   /labels  int64 (n)
//   /tokens  int64 (n, L)        sampled token ids, scales concatenated
//   root attributes: provenance, vae, var, cfg, top_k, top_p, seed, batch, more_smooth,
//   patch_nums, image_size, command_line, model_config, seed_rule, device, and the privacy stamp
//   of train/release.hpp: the samples are a release of the --var model, so they carry its
//   ledger when --var is a stamped vardp output (`vardp merge`: privacy_source "inherited"),
//   else privacy_source "unknown" (no dp_enabled, epsilon = +inf: no guarantee is claimed).
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "app/command.hpp"
#include "app/int_list.hpp"
#include "app/job.hpp"
#include "app/sample_run.hpp"
#include "vardp/io/atomic_file.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/model/infer.hpp"
#include "vardp/model/sampling.hpp"
#include "vardp/train/release.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::app {
namespace {

constexpr const char* kSampleUsage =
    "vardp sample --vae V --var M --classes 1,5,9 [--per-class n] --cfg 1.5 --top-k 900 --top-p 0.96 "
    "--seed S --out O.h5\n       vardp sample --run DIR [--checkpoint F] [--per-class n] [--seed S] [--out DIR/samples.h5]";
constexpr const char* kSamplesFormat = "vardp.samples";
constexpr int64_t kSamplesFormatVersion = 1;

int run_sample(const std::vector<std::string>& args) {
  po::options_description options(kSampleUsage);
  options.add_options()
      ("vae", po::value<std::string>(), "VQ-VAE checkpoint (.pth or vardp HDF5)")
      ("var", po::value<std::string>(), "VAR checkpoint (.pth or vardp HDF5)")
      ("classes", po::value<std::string>(), "comma-separated class ids (num_classes = unconditional)")
      ("run", po::value<std::string>(), "a vardp train run directory: sample its evaluation set (rank-sharded, "
                                       "per class as many as its test split has, or --per-class)")
      ("checkpoint", po::value<std::string>()->default_value(""), "with --run: this checkpoint instead of the latest")
      ("per-class", po::value<int64_t>()->default_value(1), "images per class")
      ("cfg", po::value<double>()->default_value(1.5), "classifier-free guidance at the last scale")
      ("top-k", po::value<int64_t>()->default_value(900), "top-k filter (0: off; ties at the k-th value kept)")
      ("top-p", po::value<double>()->default_value(0.96), "top-p (nucleus) filter (0: off)")
      ("seed", po::value<uint64_t>()->default_value(0), "generator seed of the first batch")
      ("more-smooth", po::bool_switch(), "gumbel-softmax smoothing (visualisation only)")
      ("batch", po::value<int64_t>()->default_value(16), "images per autoregressive batch")
      ("out", po::value<std::string>(), "samples file to write (format vardp.samples; with --run default DIR/samples.h5)")
      ("device", po::value<std::string>()->default_value("auto"), "auto, cpu, cuda or cuda:N")
      ("threads", po::value<int>()->default_value(0), "intra-op CPU threads (0: LibTorch's default)");
  po::variables_map vm;
  if (!parse_command_line(args, kSampleUsage, options, vm)) return 0;
  if (vm.count("run")) return sample_run(vm);
  for (const char* required : {"vae", "var", "classes", "out"})
    if (!vm.count(required)) throw UsageError(str("--", required, " is required (or use --run DIR)"), "vardp sample");
  const std::vector<int64_t> classes = parse_int_list(vm["classes"].as<std::string>(), "--classes");
  const int64_t per_class = vm["per-class"].as<int64_t>();
  const int64_t batch = vm["batch"].as<int64_t>();
  model::SampleOptions opt;
  opt.cfg = vm["cfg"].as<double>();
  opt.top_k = vm["top-k"].as<int64_t>();
  opt.top_p = vm["top-p"].as<double>();
  opt.more_smooth = vm["more-smooth"].as<bool>();
  const uint64_t seed = vm["seed"].as<uint64_t>();
  if (per_class < 1) throw UsageError("--per-class must be >= 1", "vardp sample");
  if (batch < 1) throw UsageError("--batch must be >= 1", "vardp sample");
  if (opt.top_k < 0) throw UsageError("--top-k must be >= 0", "vardp sample");
  if (opt.top_p < 0 || opt.top_p >= 1) throw UsageError("--top-p must be in [0, 1)", "vardp sample");
  if (vm["threads"].as<int>() > 0) torch::set_num_threads(vm["threads"].as<int>());
  const torch::Device device = model::resolve_device(vm["device"].as<std::string>());
  const std::string vae_path = vm["vae"].as<std::string>(), var_path = vm["var"].as<std::string>();
  const std::string out_path = vm["out"].as<std::string>();

  const auto t0 = std::chrono::steady_clock::now();
  model::LoadedModels m = model::load_vae_var(vae_path, var_path, device);
  // Read before sampling: a contradictory stamp fails the command before the expensive part.
  const train::ReleasePrivacy privacy = train::read_release_privacy(var_path);
  const model::VARConfig& vc = m.var->config();
  for (int64_t c : classes)
    if (c < 0 || c > vc.num_classes)
      throw UsageError(str("class ", c, " is outside [0, ", vc.num_classes, "] (", vc.num_classes,
                           " = unconditional)"), "--classes");
  std::vector<int64_t> labels;
  for (int64_t c : classes)
    for (int64_t i = 0; i < per_class; ++i) labels.push_back(c);
  const int64_t n = static_cast<int64_t>(labels.size());
  const int64_t R = m.vae->config().image_size(), L = vc.L();
  log::info("sample: ", n, " images of ", R, "x", R, " from ", vc.describe());

  std::vector<uint8_t> images;
  std::vector<int64_t> tokens;
  images.reserve(static_cast<size_t>(n * R * R * 3));
  tokens.reserve(static_cast<size_t>(n * L));
  for (int64_t b0 = 0, bi = 0; b0 < n; b0 += batch, ++bi) {
    const int64_t B = std::min(batch, n - b0);
    opt.seed = seed + static_cast<uint64_t>(bi);
    torch::Tensor lab = torch::tensor(std::vector<int64_t>(labels.begin() + b0, labels.begin() + b0 + B),
                                      torch::kLong);
    model::SampleResult r = model::autoregressive_infer_cfg(*m.var, *m.vae, B, lab, opt);
    torch::Tensor img = model::to_uint8_hwc(r.images);
    images.insert(images.end(), img.data_ptr<uint8_t>(), img.data_ptr<uint8_t>() + img.numel());
    torch::Tensor tok = torch::cat(r.tokens, 1).to(torch::kCPU).contiguous();
    tokens.insert(tokens.end(), tok.data_ptr<int64_t>(), tok.data_ptr<int64_t>() + tok.numel());
    log::info("sample: ", b0 + B, "/", n);
  }

  io::AtomicH5File out(out_path);
  const hid_t f = out.id();
  io::Provenance prov;
  prov.format = kSamplesFormat;
  prov.format_version = kSamplesFormatVersion;
  io::write_provenance(f, prov);
  std::ostringstream cmd;
  cmd << "vardp sample";
  for (const auto& a : args) cmd << " " << a;
  io::h5_write_attr(f, "command_line", cmd.str());
  io::h5_write_attr(f, "vae", vae_path);
  io::h5_write_attr(f, "var", var_path);
  io::h5_write_attr(f, "model_config", vc.describe());
  io::h5_write_attr(f, "cfg", opt.cfg);
  io::h5_write_attr(f, "top_k", opt.top_k);
  io::h5_write_attr(f, "top_p", opt.top_p);
  io::h5_write_attr(f, "seed", static_cast<int64_t>(seed));
  io::h5_write_attr(f, "batch", batch);
  io::h5_write_attr(f, "seed_rule", "batch b uses seed + b");
  io::h5_write_attr(f, "more_smooth", static_cast<int64_t>(opt.more_smooth));
  io::h5_write_attr(f, "patch_nums", vc.patch_nums);
  io::h5_write_attr(f, "image_size", R);
  io::h5_write_attr(f, "device", device.str());
  train::write_release_privacy(f, privacy);
  io::h5_write<uint8_t>(f, "images", images,
                        {static_cast<hsize_t>(n), static_cast<hsize_t>(R), static_cast<hsize_t>(R), 3});
  io::h5_write<int64_t>(f, "labels", labels, {static_cast<hsize_t>(n)});
  io::h5_write<int64_t>(f, "tokens", tokens, {static_cast<hsize_t>(n), static_cast<hsize_t>(L)});
  out.commit();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  log::info("sample: wrote ", out_path, " (", n, " images, ", s, " s)");
  return 0;
}

}  // namespace
VARDP_COMMAND("sample", "class-conditional images from a VAR model (CFG, top-k / top-p, seeded)", run_sample);
}  // namespace vardp::app
