// Golden tests of the VQ-VAE and VAR ports against reference outputs of the official code
// (../shared/fixtures/var_official_tiny, FoundationVision/VAR at 78b9539, PyTorch 1.13 CPU).
// The two .pth files are loaded directly with vardp's reader.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_paths.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/io/state_dict.hpp"
#include "vardp/model/infer.hpp"
#include "vardp/model/sampling.hpp"

namespace vardp::model {
namespace {

std::string fx(const std::string& name) { return test::fixture("var_official_tiny/" + name); }

template <class T>
torch::Tensor read(hid_t f, const std::string& path, torch::ScalarType st) {
  std::vector<hsize_t> dims;
  std::vector<T> v = io::h5_read<T>(f, path, &dims);
  std::vector<int64_t> shape(dims.begin(), dims.end());
  return torch::from_blob(v.data(), shape, st).clone();
}
torch::Tensor readf(hid_t f, const std::string& path) { return read<float>(f, path, torch::kFloat); }
torch::Tensor readl(hid_t f, const std::string& path) { return read<int64_t>(f, path, torch::kLong); }
torch::Tensor readi(hid_t f, const std::string& path) { return read<int32_t>(f, path, torch::kInt); }

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return INFINITY;
  return (a.detach().to(torch::kDouble) - b.detach().to(torch::kDouble)).abs().max().item<double>();
}

double max_rel(const torch::Tensor& a, const torch::Tensor& b) {
  auto ad = a.detach().to(torch::kDouble), bd = b.detach().to(torch::kDouble);
  return ((ad - bd).abs() / bd.abs().clamp_min(1e-30)).max().item<double>();
}

// Prints the error so the test log records how close the port is.
#define EXPECT_MAX_ABS(a, b, tol, what)                                \
  do {                                                                 \
    const double err_ = max_abs(a, b);                                 \
    std::printf("[ max abs err ] %-48s %.3e\n", (what), err_);         \
    EXPECT_LE(err_, (tol)) << (what);                                  \
  } while (0)

class OfficialTiny : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);
    models_ = new LoadedModels(load_vae_var(fx("vae_fixture.pth"), fx("var_fixture.pth")));
    file_ = new io::H5File(io::H5File::open(fx("fixture.h5")));
    std::ifstream in(fx("config.json"));
    config_ = new nlohmann::json(nlohmann::json::parse(in));
  }
  static void TearDownTestSuite() {
    delete models_;
    delete file_;
    delete config_;
  }
  static VQVAEImpl& vae() { return *models_->vae; }
  static VARImpl& var() { return *models_->var; }
  static hid_t h5() { return file_->id(); }
  static const nlohmann::json& cfg() { return *config_; }
  static int64_t SN() { return var().config().num_scales(); }

  static LoadedModels* models_;
  static io::H5File* file_;
  static nlohmann::json* config_;
};
LoadedModels* OfficialTiny::models_ = nullptr;
io::H5File* OfficialTiny::file_ = nullptr;
nlohmann::json* OfficialTiny::config_ = nullptr;

TEST_F(OfficialTiny, InferredConfigsMatchTheOfficialConstructorArguments) {
  const auto& q = vae().config();
  const auto& jq = cfg()["vqvae"];
  EXPECT_EQ(q.vocab_size, jq["vocab_size"].get<int64_t>());
  EXPECT_EQ(q.z_channels, jq["z_channels"].get<int64_t>());
  EXPECT_EQ(q.ch, jq["ch"].get<int64_t>());
  EXPECT_EQ(q.ch_mult, jq["ch_mult"].get<std::vector<int64_t>>());
  EXPECT_EQ(q.num_res_blocks, jq["num_res_blocks"].get<int64_t>());
  EXPECT_EQ(q.share_quant_resi, jq["share_quant_resi"].get<int64_t>());
  EXPECT_EQ(q.using_sa, jq["using_sa"].get<bool>());
  EXPECT_EQ(q.using_mid_sa, jq["using_mid_sa"].get<bool>());
  EXPECT_EQ(q.quant_conv_ks, jq["quant_conv_ks"].get<int64_t>());
  EXPECT_EQ(q.v_patch_nums, jq["v_patch_nums"].get<std::vector<int64_t>>());
  EXPECT_EQ(q.downsample(), jq["downsample"].get<int64_t>());
  EXPECT_EQ(q.image_size(), cfg()["image_size"].get<int64_t>());

  const auto& v = var().config();
  const auto& jv = cfg()["var"];
  EXPECT_EQ(v.depth, jv["depth"].get<int64_t>());
  EXPECT_EQ(v.embed_dim, jv["embed_dim"].get<int64_t>());
  EXPECT_EQ(v.num_heads, jv["num_heads"].get<int64_t>());
  EXPECT_EQ(v.num_classes, jv["num_classes"].get<int64_t>());
  EXPECT_EQ(v.ffn_hidden(), jv["ffn_hidden"].get<int64_t>());
  EXPECT_EQ(v.shared_aln, jv["shared_aln"].get<bool>());
  EXPECT_EQ(v.attn_l2_norm, jv["attn_l2_norm"].get<bool>());
  EXPECT_EQ(v.patch_nums, jv["patch_nums"].get<std::vector<int64_t>>());
  EXPECT_EQ(v.L(), jv["L"].get<int64_t>());
  EXPECT_DOUBLE_EQ(v.drop_path_rate, jv["drop_path_rate"].get<double>());
  auto be = v.begin_ends();
  auto jbe = jv["begin_ends"];
  ASSERT_EQ(be.size(), jbe.size());
  for (size_t i = 0; i < be.size(); ++i) {
    EXPECT_EQ(be[i].first, jbe[i][0].get<int64_t>());
    EXPECT_EQ(be[i].second, jbe[i][1].get<int64_t>());
  }
  EXPECT_EQ(count_parameters(var()), jv["num_params"].get<int64_t>());
  EXPECT_EQ(count_parameters(vae()), jq["num_params"].get<int64_t>());
}

TEST_F(OfficialTiny, PhiTicksAndIndexTableAreTheFloat64Ones) {
  const auto ticks = phi_ticks(4);
  const auto want = cfg()["vqvae"]["phi_ticks"].get<std::vector<double>>();
  ASSERT_EQ(ticks.size(), want.size());
  for (size_t k = 0; k < ticks.size(); ++k) EXPECT_EQ(ticks[k], want[k]) << "tick " << k;
  const auto table = cfg()["vqvae"]["phi_index_per_scale"].get<std::vector<int64_t>>();
  for (int64_t si = 0; si < SN(); ++si) {
    EXPECT_EQ(phi_index(4, si, SN()), table[si]) << "scale " << si;
    EXPECT_EQ(vae().quantize->quant_resi->index(si, SN()), table[si]);
  }
}

TEST_F(OfficialTiny, VqvaeEncodingTokensAndReconstruction) {
  torch::NoGradGuard no_grad;
  torch::Tensor img = readf(h5(), "inputs/images");
  torch::Tensor f = vae().encode_f(img);
  EXPECT_MAX_ABS(f, readf(h5(), "vae/f"), 1e-4, "vae/f");

  // Token ids from the fixture's f (the arg-min margins are >= 1e-4) and from our own f.
  auto ids_own = vae().img_to_idxBl(img);
  auto ids = vae().quantize->f_to_idxBl_or_fhat(readf(h5(), "vae/f"), false);
  ASSERT_EQ(static_cast<int64_t>(ids.size()), SN());
  for (int64_t si = 0; si < SN(); ++si) {
    torch::Tensor want = readl(h5(), "tokens/scale_" + std::to_string(si));
    EXPECT_TRUE(torch::equal(ids[si], want)) << "tokens of scale " << si;
    EXPECT_TRUE(torch::equal(ids_own[si], want)) << "tokens of scale " << si << " (own f)";
  }
  EXPECT_TRUE(torch::equal(torch::cat(ids_own, 1), readl(h5(), "tokens/gt_BL")));

  auto fhats = vae().quantize->f_to_idxBl_or_fhat(f, true);
  torch::Tensor want_fhat = readf(h5(), "vae/fhat_per_scale");
  for (int64_t si = 0; si < SN(); ++si)
    EXPECT_MAX_ABS(fhats[si], want_fhat[si], 1e-4, ("vae/fhat_per_scale[" + std::to_string(si) + "]").c_str());

  // f_hat from ids (embed_to_fhat) equals the quantiser's last f_hat.
  EXPECT_MAX_ABS(vae().idxBl_to_fhat(ids_own), want_fhat[SN() - 1], 1e-4, "idxBl_to_fhat");
  EXPECT_MAX_ABS(vae().fhat_to_img(want_fhat[SN() - 1]), readf(h5(), "vae/recon"), 1e-4, "vae/recon");
  auto recon = vae().img_to_reconstructed_img(img, /*last_one=*/true);
  EXPECT_MAX_ABS(recon[0], readf(h5(), "vae/recon"), 1e-4, "img_to_reconstructed_img");
}

TEST_F(OfficialTiny, TeacherForcingInputLogitsAndCrossEntropy) {
  std::vector<torch::Tensor> ids;
  for (int64_t si = 0; si < SN(); ++si) ids.push_back(readl(h5(), "tokens/scale_" + std::to_string(si)));
  torch::Tensor x = vae().quantize->idxBl_to_var_input(ids);
  torch::Tensor want_x = readf(h5(), "teacher_forcing/x_BLCv_wo_first_l");
  EXPECT_MAX_ABS(x, want_x, 1e-4, "teacher_forcing/x_BLCv_wo_first_l");

  torch::Tensor labels = readl(h5(), "inputs/labels");
  torch::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = var().forward(labels, want_x);
  }
  EXPECT_MAX_ABS(logits, readf(h5(), "teacher_forcing/logits"), 1e-4, "teacher_forcing/logits");

  torch::Tensor gt = readl(h5(), "tokens/gt_BL");
  TokenLoss loss = model::cross_entropy_loss(logits, gt);
  const double rel_tok = max_rel(loss.per_token, readf(h5(), "teacher_forcing/ce_per_token"));
  const double rel_mean = max_rel(loss.mean, readf(h5(), "teacher_forcing/ce_mean"));
  std::printf("[ max rel err ] %-48s %.3e\n", "teacher_forcing/ce_per_token", rel_tok);
  std::printf("[ max rel err ] %-48s %.3e\n", "teacher_forcing/ce_mean", rel_mean);
  EXPECT_LE(rel_tok, 1e-5);
  EXPECT_LE(rel_mean, 1e-5);
  EXPECT_MAX_ABS(loss.per_example, loss.per_token.mean(1), 1e-5, "per_example == mean over L");

  TokenLoss smooth = model::cross_entropy_loss(logits, gt, 0.1);
  const double rel_smooth = max_rel(smooth.mean, readf(h5(), "teacher_forcing/ce_mean_label_smooth_0p1"));
  std::printf("[ max rel err ] %-48s %.3e\n", "ce_mean_label_smooth_0p1", rel_smooth);
  EXPECT_LE(rel_smooth, 1e-5);

  torch::Tensor per_scale = readf(h5(), "teacher_forcing/ce_per_scale");
  auto be = var().config().begin_ends();
  for (int64_t si = 0; si < SN(); ++si) {
    torch::Tensor m = loss.per_token.slice(1, be[si].first, be[si].second).mean();
    EXPECT_LE(max_rel(m, per_scale[si]), 1e-5) << "scale " << si;
  }
  const double acc = logits.argmax(-1).eq(gt).to(torch::kDouble).mean().item<double>() * 100;
  EXPECT_NEAR(acc, readf(h5(), "teacher_forcing/acc_mean_percent").item<double>(), 1e-4);
}

TEST_F(OfficialTiny, GradientsOfTheSmallParameters) {
  torch::Tensor x = readf(h5(), "teacher_forcing/x_BLCv_wo_first_l");
  torch::Tensor labels = readl(h5(), "inputs/labels");
  torch::Tensor gt = readl(h5(), "tokens/gt_BL");
  var().zero_grad();
  TokenLoss loss = model::cross_entropy_loss(var().forward(labels, x), gt);
  loss.mean.backward();

  auto params = var().named_parameters(true);
  auto names = io::h5_list(h5(), "teacher_forcing/grads");
  ASSERT_GE(names.size(), 20u);
  double total_sq = 0;
  for (const auto& p : params) total_sq += p.value().grad().defined() ? p.value().grad().square().sum().item<double>() : 0;
  for (const auto& name : names) {
    torch::Tensor* p = params.find(name);
    ASSERT_NE(p, nullptr) << name;
    ASSERT_TRUE(p->grad().defined()) << name;
    EXPECT_MAX_ABS(p->grad(), readf(h5(), "teacher_forcing/grads/" + name), 1e-4, ("grad " + name).c_str());
  }
  const double want_total = readf(h5(), "teacher_forcing/grad_total_norm").item<double>();
  EXPECT_NEAR(std::sqrt(total_sq), want_total, 1e-4 * want_total);
  for (const auto& [name, norm] : cfg()["var_grad_norms"].items()) {
    torch::Tensor* p = params.find(name);
    ASSERT_NE(p, nullptr) << name;
    EXPECT_NEAR(p->grad().norm().item<double>(), norm.get<double>(), 1e-4 * (1 + norm.get<double>())) << name;
  }
  var().zero_grad();
}

// One autoregressive run of the fixture, replayed with the same arguments.
struct ArRun {
  std::string name;
  double cfg;
  int64_t top_k;
  double top_p;
  uint64_t seed;
};

SampleResult replay(VARImpl& var, VQVAEImpl& vae, hid_t h5, const ArRun& run, bool logits) {
  torch::Tensor labels = readl(h5, "ar/" + run.name + "/labels");
  SampleOptions opt;
  opt.cfg = run.cfg;
  opt.top_k = run.top_k;
  opt.top_p = run.top_p;
  opt.seed = run.seed;
  opt.record_kept = true;
  opt.record_logits = logits;
  return autoregressive_infer_cfg(var, vae, labels.size(0), labels, opt);
}

TEST_F(OfficialTiny, GreedySamplingRunsAreReproduced) {
  for (const ArRun& run : {ArRun{"greedy_cfg1p5", 1.5, 1, 0.0, 7}, ArRun{"greedy_cfg4", 4.0, 1, 0.0, 7}}) {
    SCOPED_TRACE(run.name);
    const std::string g = "ar/" + run.name + "/";
    const bool logits = run.name == "greedy_cfg1p5";
    SampleResult r = replay(var(), vae(), h5(), run, logits);
    for (int64_t si = 0; si < SN(); ++si) {
      const std::string s = std::to_string(si);
      EXPECT_TRUE(torch::equal(r.tokens[si], readl(h5(), g + "tokens/scale_" + s))) << "tokens scale " << si;
      EXPECT_TRUE(torch::equal(r.kept[si], readi(h5(), g + "kept_count/scale_" + s))) << "kept scale " << si;
      if (logits)
        EXPECT_MAX_ABS(r.logits_raw[si], readf(h5(), g + "logits_raw/scale_" + s), 1e-4,
                       (g + "logits_raw/scale_" + s).c_str());
    }
    EXPECT_MAX_ABS(r.images, readf(h5(), g + "images_01"), 1e-4, (g + "images_01").c_str());
    // Decoding the sampled ids again gives the same image.
    EXPECT_MAX_ABS(vae().idxBl_to_img(r.tokens).add(1).mul(0.5), r.images, 1e-5, "idxBl_to_img(sampled)");
  }
}

TEST_F(OfficialTiny, SampledRunKeepsTheSameTokenCounts) {
  const ArRun run{"sampled_topk64_topp0p9_cfg1p5", 1.5, 64, 0.9, 7};
  const std::string g = "ar/" + run.name + "/";
  SampleResult r = replay(var(), vae(), h5(), run, false);
  // Kept counts of scale si depend on the tokens drawn before it: they must match wherever the
  // earlier draws match (always for scale 0; for every scale when the generator is PyTorch's).
  int64_t equal_tokens = 0, total = 0;
  bool history_equal = true;
  for (int64_t si = 0; si < SN(); ++si) {
    const std::string s = std::to_string(si);
    if (history_equal)
      EXPECT_TRUE(torch::equal(r.kept[si], readi(h5(), g + "kept_count/scale_" + s))) << "kept scale " << si;
    torch::Tensor want = readl(h5(), g + "tokens/scale_" + s);
    equal_tokens += r.tokens[si].eq(want).sum().item<int64_t>();
    total += want.numel();
    history_equal = history_equal && torch::equal(r.tokens[si], want);
  }
  std::printf("[ sampled run ] tokens equal to the official run: %lld / %lld\n",
              static_cast<long long>(equal_tokens), static_cast<long long>(total));
#if TORCH_VERSION_MAJOR == 1 && TORCH_VERSION_MINOR == 13
  // Same CPU generator and multinomial as the PyTorch 1.13 that made the fixture.
  EXPECT_EQ(equal_tokens, total);
  EXPECT_MAX_ABS(r.images, readf(h5(), g + "images_01"), 1e-4, (g + "images_01").c_str());
#endif
  // Same seed, same draws.
  SampleResult again = replay(var(), vae(), h5(), run, false);
  for (int64_t si = 0; si < SN(); ++si) EXPECT_TRUE(torch::equal(again.tokens[si], r.tokens[si]));
}

}  // namespace
}  // namespace vardp::model
