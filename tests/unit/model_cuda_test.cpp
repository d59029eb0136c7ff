// CPU vs CUDA agreement of the model code (skips without CUDA): a VAR forward/backward, the
// VQ-VAE tokenizer, and greedy sampling on the official tiny fixture.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "test_paths.hpp"
#include "vardp/model/infer.hpp"
#include "vardp/model/sampling.hpp"

namespace vardp::model {
namespace {

// Skips the test without CUDA; otherwise full float32 on the GPU (TF32 convolutions/matmuls
// would differ from the CPU by ~1e-3).
#define REQUIRE_CUDA()                                              \
  do {                                                              \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"; \
    at::globalContext().setAllowTF32CuBLAS(false);                  \
    at::globalContext().setAllowTF32CuDNN(false);                   \
  } while (0)

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.detach().cpu().to(torch::kDouble) - b.detach().cpu().to(torch::kDouble)).abs().max().item<double>();
}

TEST(ModelCuda, VarForwardBackwardMatchesCpu) {
  REQUIRE_CUDA();
  torch::manual_seed(0);
  VARConfig c = VARConfig::for_depth(4, 10, 512, 16, {1, 2, 3, 4, 6});
  c.drop_path_rate = 0;
  VAR cpu(c);
  cpu->init_weights();
  {
    torch::NoGradGuard g;
    for (auto& p : cpu->parameters()) p.add_(torch::randn_like(p) * 0.02);
  }
  VAR gpu(c);
  load_strict(*gpu, [&] {
    io::StateDict sd;
    for (const auto& p : cpu->named_parameters()) sd.insert(p.key(), p.value().detach().clone());
    for (const auto& b : cpu->named_buffers()) sd.insert(b.key(), b.value().detach().clone());
    return sd;
  }(), "cpu model");
  gpu->to(torch::kCUDA);
  cpu->eval();
  gpu->eval();
  const int64_t B = 3, L = c.L();
  torch::Tensor x = torch::randn({B, L - 1, c.Cvae});
  torch::Tensor labels = torch::tensor({0, 4, 10}, torch::kLong);
  torch::Tensor gt = torch::randint(0, c.vocab_size, {B, L}, torch::kLong);
  TokenLoss lc = model::cross_entropy_loss(cpu->forward(labels, x), gt);
  TokenLoss lg = model::cross_entropy_loss(gpu->forward(labels.cuda(), x.cuda()), gt.cuda());
  EXPECT_LE(max_abs(lc.per_token, lg.per_token), 1e-4);
  lc.mean.backward();
  lg.mean.backward();
  auto pg = gpu->named_parameters();
  for (const auto& p : cpu->named_parameters()) {
    const double scale = 1 + p.value().grad().abs().max().item<double>();
    EXPECT_LE(max_abs(p.value().grad(), pg[p.key()].grad()), 1e-4 * scale) << p.key();
  }
}

TEST(ModelCuda, OfficialTinyTokensAndGreedySamplesOnCuda) {
  REQUIRE_CUDA();
  const std::string dir = test::fixture("var_official_tiny/");
  LoadedModels m = load_vae_var(dir + "vae_fixture.pth", dir + "var_fixture.pth", torch::kCUDA);
  LoadedModels ref = load_vae_var(dir + "vae_fixture.pth", dir + "var_fixture.pth", torch::kCPU);
  torch::manual_seed(0);
  torch::Tensor img = torch::rand({2, 3, 80, 80}) * 2 - 1;
  auto ids_c = ref.vae->img_to_idxBl(img);
  auto ids_g = m.vae->img_to_idxBl(img.cuda());
  int64_t diff = 0;
  for (size_t s = 0; s < ids_c.size(); ++s) diff += ids_c[s].ne(ids_g[s].cpu()).sum().item<int64_t>();
  EXPECT_LE(diff, 1) << "token ids differ (near-ties may flip one)";

  SampleOptions opt;
  opt.cfg = 1.5;
  opt.top_k = 1;
  opt.seed = 7;
  torch::Tensor labels = torch::tensor({1, 5, 8}, torch::kLong);
  SampleResult rc = autoregressive_infer_cfg(*ref.var, *ref.vae, 3, labels, opt);
  SampleResult rg = autoregressive_infer_cfg(*m.var, *m.vae, 3, labels, opt);
  for (size_t s = 0; s < rc.tokens.size(); ++s) EXPECT_TRUE(torch::equal(rc.tokens[s], rg.tokens[s].cpu())) << s;
  EXPECT_LE(max_abs(rc.images, rg.images), 1e-4);
}

}  // namespace
}  // namespace vardp::model
