// vardp score: per-example, per-token cross-entropy of a VAR model under teacher forcing — the
// per-example loss membership-inference audits need.
//
// Input D.h5: /images uint8 (N, H, W, 3) RGB, /labels int64 (N) (the dataset format of
// `vardp prepare`; other attributes are not required). Images of the model's size R are used as
// they are (x/255*2-1); others go through VAR's evaluation transform: shorter side to
// round(1.125 R) with PIL's Lanczos, centre crop R.
//
// Output S.h5 (format "vardp.score", version 1), written atomically:
//   /tokens    int64   (N, L)  VQ-VAE token ids, scales concatenated (row-major per scale)
//   /nll       float32 (N, L)  -log p(token | class, coarser scales), natural log
//   /nll_mean  float32 (N)     mean of /nll over L (the official training loss of the example)
//   /labels    int64   (N)     labels used (label dropout off)
//   root attributes: provenance, vae, var, data, patch_nums, begin_ends (flattened), L,
//   image_size, label_smoothing, command_line.
#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "app/command.hpp"
#include "app/job.hpp"
#include "vardp/data/image.hpp"
#include "vardp/data/resize.hpp"
#include "vardp/io/atomic_file.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/model/infer.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::app {
namespace {

constexpr const char* kScoreUsage =
    "vardp score --vae V.pth --var M.pth --data D.h5 --out S.h5 [--batch 16] [--device auto]";
constexpr const char* kScoreFormat = "vardp.score";
constexpr int64_t kScoreFormatVersion = 1;

// One stored image (HWC uint8) -> model input (3, R, R) in [-1, 1].
void prepare_image(const uint8_t* hwc, int h, int w, int R, float* chw) {
  const uint8_t* src = hwc;
  data::Image resized;
  if (h != R || w != R) {
    data::Image in(w, h, 3);
    std::copy(hwc, hwc + static_cast<size_t>(w) * h * 3, in.pixels.begin());
    const int mid = data::mid_resolution(R);
    int ow = 0, oh = 0;
    data::shorter_side_size(w, h, mid, &ow, &oh);
    const int x0 = data::center_crop_offset(ow, R), y0 = data::center_crop_offset(oh, R);
    // PIL returns a copy when the size does not change; so do we.
    resized = (ow == w && oh == h) ? data::crop(in, x0, y0, R, R)
                                   : data::resize_lanczos_window(in, ow, oh, x0, y0, R, R);
    src = resized.pixels.data();
  }
  const size_t plane = static_cast<size_t>(R) * R;
  for (size_t p = 0; p < plane; ++p)
    for (int c = 0; c < 3; ++c) {
      const float v = static_cast<float>(src[p * 3 + c]) / 255.0f;  // ToTensor
      chw[c * plane + p] = v + v - 1.0f;                               // normalize_01_into_pm1
    }
}

int run_score(const std::vector<std::string>& args) {
  po::options_description options(kScoreUsage);
  options.add_options()
      ("vae", po::value<std::string>()->required(), "VQ-VAE checkpoint (.pth or vardp HDF5)")
      ("var", po::value<std::string>()->required(), "VAR checkpoint (.pth or vardp HDF5)")
      ("data", po::value<std::string>()->required(), "dataset file: /images uint8 (N,H,W,3), /labels int64 (N)")
      ("out", po::value<std::string>()->required(), "score file to write (format vardp.score)")
      ("batch", po::value<int64_t>()->default_value(16), "examples per forward pass")
      ("label-smoothing", po::value<double>()->default_value(0.0), "label smoothing of the cross-entropy")
      ("device", po::value<std::string>()->default_value("auto"), "auto, cpu, cuda or cuda:N")
      ("threads", po::value<int>()->default_value(0), "intra-op CPU threads (0: LibTorch's default)");
  po::variables_map vm;
  if (!parse_command_line(args, kScoreUsage, options, vm)) return 0;
  const std::string vae_path = vm["vae"].as<std::string>(), var_path = vm["var"].as<std::string>();
  const std::string data_path = vm["data"].as<std::string>(), out_path = vm["out"].as<std::string>();
  const int64_t batch = vm["batch"].as<int64_t>();
  const double smoothing = vm["label-smoothing"].as<double>();
  if (batch < 1) throw UsageError(str("--batch must be >= 1, got ", batch), "vardp score");
  if (smoothing < 0 || smoothing >= 1) throw UsageError("--label-smoothing must be in [0, 1)", "vardp score");
  if (vm["threads"].as<int>() > 0) torch::set_num_threads(vm["threads"].as<int>());
  const torch::Device device = model::resolve_device(vm["device"].as<std::string>());

  const auto t0 = std::chrono::steady_clock::now();
  model::LoadedModels m = model::load_vae_var(vae_path, var_path, device);
  const model::VARConfig& vc = m.var->config();
  const int R = static_cast<int>(m.vae->config().image_size());
  const int64_t L = vc.L();
  log::info("score: ", vc.describe(), "; image size ", R);

  io::H5File data = io::H5File::open(data_path);
  const auto idims = io::h5_dims(data.id(), "images");
  if (idims.size() != 4 || idims[3] != 3)
    throw Error("/images must be uint8 (N, H, W, 3)", data_path);
  const int64_t N = static_cast<int64_t>(idims[0]);
  const int H = static_cast<int>(idims[1]), W = static_cast<int>(idims[2]);
  std::vector<hsize_t> ldims;
  const std::vector<int64_t> labels = io::h5_read<int64_t>(data.id(), "labels", &ldims);
  if (ldims.size() != 1 || static_cast<int64_t>(ldims[0]) != N)
    throw Error(str("/labels must be (", N, "), got ", ldims.size(), " dims"), data_path);
  for (int64_t i = 0; i < N; ++i)
    if (labels[i] < 0 || labels[i] >= vc.num_classes)
      throw Error(str("label ", labels[i], " of example ", i, " is outside [0, ", vc.num_classes, ")"),
                  data_path);
  if (H != R || W != R)
    log::info("score: images are ", W, "x", H, ", resized (Lanczos, shorter side ",
              data::mid_resolution(R), ") and centre-cropped to ", R);

  std::vector<int64_t> tokens(static_cast<size_t>(N * L));
  std::vector<float> nll(static_cast<size_t>(N * L)), nll_mean(static_cast<size_t>(N));
  torch::NoGradGuard no_grad;
  for (int64_t b0 = 0; b0 < N; b0 += batch) {
    const int64_t n = std::min(batch, N - b0);
    const std::vector<uint8_t> rows =
        io::h5_read_rows<uint8_t>(data.id(), "images", static_cast<hsize_t>(b0), static_cast<hsize_t>(n));
    torch::Tensor img = torch::empty({n, 3, R, R});
    for (int64_t i = 0; i < n; ++i)
      prepare_image(rows.data() + static_cast<size_t>(i) * H * W * 3, H, W, R,
                    img.data_ptr<float>() + i * 3 * R * R);
    img = img.to(device);
    torch::Tensor lab = torch::tensor(std::vector<int64_t>(labels.begin() + b0, labels.begin() + b0 + n),
                                      torch::kLong).to(device);
    std::vector<torch::Tensor> ids = m.vae->img_to_idxBl(img);
    torch::Tensor gt = torch::cat(ids, 1);
    torch::Tensor logits = m.var->forward(lab, m.vae->quantize->idxBl_to_var_input(ids));
    model::TokenLoss loss = model::cross_entropy_loss(logits, gt, smoothing);
    torch::Tensor gt_c = gt.to(torch::kCPU).contiguous();
    torch::Tensor tok_c = loss.per_token.to(torch::kCPU).contiguous();
    torch::Tensor mean_c = loss.per_example.to(torch::kCPU).contiguous();
    std::copy(gt_c.data_ptr<int64_t>(), gt_c.data_ptr<int64_t>() + n * L, tokens.begin() + b0 * L);
    std::copy(tok_c.data_ptr<float>(), tok_c.data_ptr<float>() + n * L, nll.begin() + b0 * L);
    std::copy(mean_c.data_ptr<float>(), mean_c.data_ptr<float>() + n, nll_mean.begin() + b0);
    log::debug("score: ", b0 + n, "/", N);
  }

  io::AtomicH5File out(out_path);
  const hid_t f = out.id();
  io::Provenance prov;
  prov.format = kScoreFormat;
  prov.format_version = kScoreFormatVersion;
  io::write_provenance(f, prov);
  std::ostringstream cmd;
  cmd << "vardp score";
  for (const auto& a : args) cmd << " " << a;
  io::h5_write_attr(f, "command_line", cmd.str());
  io::h5_write_attr(f, "vae", vae_path);
  io::h5_write_attr(f, "var", var_path);
  io::h5_write_attr(f, "data", data_path);
  io::h5_write_attr(f, "model_config", vc.describe());
  io::h5_write_attr(f, "patch_nums", vc.patch_nums);
  std::vector<int64_t> be;
  for (const auto& [b, e] : vc.begin_ends()) {
    be.push_back(b);
    be.push_back(e);
  }
  io::h5_write_attr(f, "begin_ends", be);
  io::h5_write_attr(f, "L", L);
  io::h5_write_attr(f, "image_size", static_cast<int64_t>(R));
  io::h5_write_attr(f, "label_smoothing", smoothing);
  io::h5_write_attr(f, "label_dropout", "off");
  io::h5_write_attr(f, "nll_units", "nats");
  const std::vector<hsize_t> nl{static_cast<hsize_t>(N), static_cast<hsize_t>(L)};
  io::h5_write<int64_t>(f, "tokens", tokens, nl);
  io::h5_write<float>(f, "nll", nll, nl);
  io::h5_write<float>(f, "nll_mean", nll_mean, {static_cast<hsize_t>(N)});
  io::h5_write<int64_t>(f, "labels", labels, {static_cast<hsize_t>(N)});
  out.commit();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  log::info("score: wrote ", out_path, " (", N, " examples, ", s, " s)");
  return 0;
}

}  // namespace
VARDP_COMMAND("score", "per-token cross-entropy and token ids of a VAR model on a dataset (teacher forcing)",
              run_score);
}  // namespace vardp::app
