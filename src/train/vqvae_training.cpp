#include "vardp/train/vqvae_training.hpp"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <sstream>
#include <utility>
#include <vector>

#include "vardp/config/config.hpp"
#include "vardp/data/batch_tensor.hpp"
#include "vardp/data/reader.hpp"
#include "vardp/io/atomic_file.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/io/module_state.hpp"
#include "vardp/io/state_dict.hpp"
#include "vardp/model/infer.hpp"
#include "vardp/train/optimizer.hpp"
#include "vardp/train/stop_request.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"
#include "vardp/util/rng.hpp"

namespace vardp::train {
namespace {

namespace F = torch::nn::functional;
using Clock = std::chrono::steady_clock;

constexpr const char* kResumeFormat = "vardp.vqvae_training_state";
constexpr int64_t kResumeFormatVersion = 1;

config::TrainConfig optimizer_config(const VqvaeTrainOptions& o) {
  config::TrainConfig c;
  c.optimizer = "adamw";
  c.lr = o.lr;
  c.weight_decay = o.weight_decay;
  c.beta1 = 0.9;
  c.beta2 = 0.99;
  c.schedule = "cosine";
  c.warmup_steps = o.warmup_steps;
  return c;
}

// Rows of step `step`: consecutive slices of per-epoch permutations (Fisher-Yates under
// (seed, shuffle, epoch)), so a resumed run sees exactly the batches it would have seen.
std::vector<int64_t> batch_rows(uint64_t seed, int64_t n, int64_t batch, int64_t step) {
  std::vector<int64_t> rows;
  rows.reserve(static_cast<size_t>(batch));
  int64_t pos = step * batch;
  std::vector<int64_t> perm;
  int64_t perm_epoch = -1;
  while (static_cast<int64_t>(rows.size()) < batch) {
    const int64_t epoch = pos / n;
    if (epoch != perm_epoch) {
      perm.resize(static_cast<size_t>(n));
      std::iota(perm.begin(), perm.end(), 0);
      rng::Stream s(seed, rng::Purpose::shuffle, static_cast<uint64_t>(epoch));
      for (int64_t i = n - 1; i > 0; --i)
        std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(s.below(static_cast<uint64_t>(i + 1)))]);
      perm_epoch = epoch;
    }
    rows.push_back(perm[static_cast<size_t>(pos % n)]);
    ++pos;
  }
  return rows;
}

void write_resume(const std::string& path, const model::VQVAEImpl& vae, const Optimizer& opt,
                  const torch::Tensor& hits, int64_t step) {
  io::AtomicH5File f(path);
  io::Provenance p;
  p.format = kResumeFormat;
  p.format_version = kResumeFormatVersion;
  io::write_provenance(f.id(), p);
  io::h5_write_attr(f.id(), "step", step);
  io::write_state_dict_group(f.id(), "model", io::state_dict_of(vae), path);
  io::h5_require_group(f.id(), "optimizer");
  for (const auto& [moment, sd] : opt.state()) io::write_state_dict_group(f.id(), "optimizer/" + moment, sd, path);
  io::StateDict h;
  h.insert("hits", hits.to(torch::kCPU));
  io::write_state_dict_group(f.id(), "code_hits", h, path);
  f.commit();
}

// Loads the resume file into `vae`, `opt` and `hits`; returns the completed steps.
int64_t read_resume(const std::string& path, model::VQVAEImpl& vae, Optimizer& opt, torch::Tensor& hits,
                    const torch::Device& dev) {
  io::H5File f = io::H5File::open(path);
  io::check_format(f.id(), path, kResumeFormat, kResumeFormatVersion);
  const int64_t step = io::h5_read_attr_int(f.id(), "step");
  const io::StateDict sd = io::read_state_dict_group(f.id(), "model", path);
  model::load_strict(vae, sd, "VQ-VAE training state " + path);
  std::map<std::string, io::StateDict> moments;
  for (const auto& m : io::h5_list(f.id(), "optimizer"))
    moments[m] = io::read_state_dict_group(f.id(), "optimizer/" + m, path);
  opt.load_state(moments, step);
  hits = io::read_state_dict_group(f.id(), "code_hits", path).at("hits").to(dev);
  return step;
}

// Codes chosen by no scale since the last reset get encoder outputs of the current batch (plus
// a little noise so that two reset codes are never equal). Returns how many were reset.
int64_t reset_dead_codes(model::VQVAEImpl& vae, const torch::Tensor& f_BChw, const torch::Tensor& hits,
                         uint64_t seed, int64_t step) {
  torch::NoGradGuard no_grad;
  const torch::Tensor dead = (hits == 0).nonzero().flatten();
  const int64_t n_dead = dead.numel();
  if (n_dead == 0) return 0;
  const int64_t C = f_BChw.size(1);
  const torch::Tensor vecs = f_BChw.permute({0, 2, 3, 1}).reshape({-1, C});
  torch::Generator gen = at::detail::createCPUGenerator(
      rng::Stream(seed, rng::Purpose::init, static_cast<uint64_t>(step)).derive_seed());
  const torch::Tensor pick = torch::randint(vecs.size(0), {n_dead}, gen, torch::kLong).to(vecs.device());
  const torch::Tensor noise = torch::randn({n_dead, C}, gen).to(vecs.device()) * vecs.std().item<double>() * 0.01;
  vae.quantize->embedding->weight.index_copy_(0, dead, vecs.index_select(0, pick) + noise);
  return n_dead;
}

// A TOML basic string (the command line may hold quotes or backslashes).
std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string format_result(const ReconstructionQuality& q) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "images=%lld mse=%.6f psnr_db=%.3f code_usage=%.4f",
                static_cast<long long>(q.images), q.mse, q.psnr_db, q.code_usage);
  return buf;
}

}  // namespace

ReconstructionQuality evaluate_reconstruction(model::VQVAEImpl& vae, const data::DatasetReader& reader,
                                              int64_t batch, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  const bool was_training = vae.is_training();
  vae.eval();
  const int64_t R = vae.config().image_size(), N = reader.size();
  data::ViewSpec spec;
  spec.train = false;
  spec.image_size = static_cast<int>(R);
  double sq = 0;
  torch::Tensor used = torch::zeros({vae.config().vocab_size}, torch::kBool);
  for (int64_t lo = 0; lo < N; lo += batch) {
    std::vector<data::Unit> units;
    for (int64_t i = lo; i < std::min(N, lo + batch); ++i) units.push_back({i, 0});
    const torch::Tensor img = data::batch_images(reader.make_batch(units, spec)).to(device);
    const std::vector<torch::Tensor> idx = vae.img_to_idxBl(img);
    for (const auto& t : idx) used.index_fill_(0, t.flatten().to(torch::kCPU), true);
    const torch::Tensor rec = vae.idxBl_to_img(idx);
    sq += (rec - img).pow(2).sum().item<double>();
  }
  if (was_training) vae.train();
  ReconstructionQuality q;
  q.images = N;
  q.mse = sq / static_cast<double>(N * 3 * R * R);
  q.psnr_db = 10.0 * std::log10(4.0 / q.mse);
  q.code_usage = used.to(torch::kFloat).mean().item<double>();
  return q;
}

VqvaeTrainResult train_vqvae(const VqvaeTrainOptions& o) {
  if (o.steps < 1 || o.batch < 1) throw UsageError("steps and batch must be >= 1", "vardp train-vqvae");
  model::VQVAEConfig mc = o.model;
  mc.test_mode = false;
  mc.validate();
  const torch::Device dev = model::resolve_device(o.device);
  auto reader = std::make_shared<const data::DatasetReader>(o.train_path);
  const int64_t R = mc.image_size(), N = reader->size();
  if (reader->resolution() < R)
    throw UsageError(str("the dataset stores ", reader->resolution(), " px images but the VQ-VAE makes ", R,
                         " px ones (patch_nums x downsample)"),
                     o.train_path);
  log::info("train-vqvae: ", mc.describe(), "; ", N, " training images at ", R, " px, ", o.steps, " steps of ",
            o.batch, " on ", dev.str());

  torch::manual_seed(rng::Stream(o.seed, rng::Purpose::init).derive_seed());
  model::VQVAE vae(mc);
  vae->to(dev);
  vae->train();
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (const auto& p : vae->named_parameters(true)) params.emplace_back(p.key(), p.value());
  const config::TrainConfig oc = optimizer_config(o);
  Optimizer opt(oc, params);
  torch::Tensor hits = torch::zeros({mc.vocab_size}, torch::TensorOptions().dtype(torch::kFloat).device(dev));

  const std::string resume_path = o.out_path + ".resume.h5";
  int64_t start = 0;
  if (std::filesystem::exists(resume_path)) {
    start = read_resume(resume_path, *vae, opt, hits, dev);
    log::info("train-vqvae: resumed from ", resume_path, " at step ", start);
  }

  data::Prefetcher prefetch(reader, 2);
  data::ViewSpec spec;
  spec.train = true;
  spec.image_size = static_cast<int>(R);
  spec.hflip = o.hflip;
  spec.seed = o.seed;
  auto submit = [&](int64_t step) {
    std::vector<data::Unit> units;
    for (int64_t r : batch_rows(o.seed, N, o.batch, step)) units.push_back({r, 0});
    data::ViewSpec s = spec;
    s.step = step;
    prefetch.submit(std::move(units), s);
  };
  for (int64_t s = start; s < std::min(o.steps, start + 2); ++s) submit(s);
  install_stop_signal_handlers();

  double sum_rec = 0, sum_vq = 0;
  int64_t logged = 0, images = 0;
  auto t_log = Clock::now();
  for (int64_t step = start; step < o.steps; ++step) {
    const torch::Tensor img = data::batch_images(prefetch.next()).to(dev);
    if (step + 2 < o.steps) submit(step + 2);
    const torch::Tensor f = vae->encode_f(img);
    // Data-dependent codebook initialisation: every code starts as an encoder output.
    if (step == 0) reset_dead_codes(*vae, f.detach(), torch::zeros_like(hits), o.seed, step);
    const model::QuantizerOutput q = vae->quantize->forward(f);
    const torch::Tensor rec = vae->decoder->forward(vae->post_quant_conv->forward(q.f_hat));
    const torch::Tensor rec_loss = F::mse_loss(rec, img);
    const torch::Tensor loss = rec_loss + q.vq_loss * o.vq_weight;
    for (auto& [name, p] : params)
      if (p.grad().defined()) p.mutable_grad().zero_();
    loss.backward();
    opt.step(learning_rate(oc, step, o.steps));
    hits.add_(q.vocab_hits.detach());
    if (!std::isfinite(loss.item<double>()))
      throw Error(str("the loss is not finite at step ", step + 1, " (lower --lr?)"), "vardp train-vqvae");
    sum_rec += rec_loss.item<double>();
    sum_vq += q.vq_loss.item<double>();
    ++logged;
    images += o.batch;
    const int64_t done = step + 1;
    if (o.reset_dead_every > 0 && done % o.reset_dead_every == 0) {
      const double usage = (hits > 0).to(torch::kFloat).mean().item<double>();
      const int64_t n = reset_dead_codes(*vae, f.detach(), hits, o.seed, done);
      log::info("train-vqvae: step ", done, " code usage ", usage, " since the last reset, ", n, " codes reset");
      hits.zero_();
    }
    if (done % o.log_every == 0 || done == o.steps) {
      const double secs = std::chrono::duration<double>(Clock::now() - t_log).count();
      char buf[200];
      std::snprintf(buf, sizeof(buf), "train-vqvae: step %lld/%lld rec_mse %.5f vq_loss %.5f lr %.2e %.1f images/s",
                    static_cast<long long>(done), static_cast<long long>(o.steps), sum_rec / logged,
                    sum_vq / logged, learning_rate(oc, step, o.steps), images / secs);
      log::info(buf);
      sum_rec = sum_vq = 0;
      logged = images = 0;
      t_log = Clock::now();
    }
    const int signal = received_stop_signal() != 0 ? received_stop_signal()
                       : (o.stop_after_step > 0 && done == o.stop_after_step) ? -1 : 0;
    if ((o.checkpoint_every > 0 && done % o.checkpoint_every == 0 && done < o.steps) ||
        (signal != 0 && done < o.steps)) {
      write_resume(resume_path, *vae, opt, hits, done);
      log::info("train-vqvae: training state saved to ", resume_path, " (step ", done, ")");
    }
    if (signal != 0 && done < o.steps) {
      log::info("train-vqvae: stopped (", signal > 0 ? str("signal ", signal) : std::string("--stop-after-step"),
                ") after step ", done, "; run the same command to resume");
      return {true, done, {}};
    }
  }

  ReconstructionQuality quality;
  std::ostringstream toml;
  toml << "# vardp train-vqvae\ncommand = " << toml_string(o.description) << "\n"
       << "architecture = " << toml_string(mc.describe()) << "\nsteps = " << o.steps << "\nbatch = " << o.batch
       << "\nlr = " << o.lr << "\nseed = " << o.seed << "\ntrain = " << toml_string(o.train_path) << "\n";
  if (!o.test_path.empty()) {
    const data::DatasetReader test(o.test_path);
    quality = evaluate_reconstruction(*vae, test, 64, dev);
    log::info("train-vqvae: test reconstruction (centre views of ", o.test_path, "): ", format_result(quality));
    toml << "test = " << toml_string(o.test_path) << "\ntest_images = " << quality.images << "\ntest_mse = " << quality.mse
         << "\ntest_psnr_db = " << quality.psnr_db << "\ntest_code_usage = " << quality.code_usage << "\n";
  }
  vae->eval();
  io::Provenance p;
  p.config_toml = toml.str();
  io::save_state_dict_h5(io::state_dict_of(*vae), o.out_path, p);
  std::filesystem::remove(resume_path);
  log::info("train-vqvae: wrote ", o.out_path);
  return {false, o.steps, quality};
}

}  // namespace vardp::train
