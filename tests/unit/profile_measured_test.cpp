// The analytic FLOP model against LibTorch's own profiler: one training step of a tiny VAR (full
// fine-tuning, LoRA, LNTuning; DP-SGD with book-keeping and instantiated per-example gradients,
// micro-batches with whole and split examples) and the VQ-VAE encoder run under the legacy
// profiler with `with_flops`, whose FLOP counts of aten::mm / addmm / bmm / conv2d must equal the
// model's forward + backward (+ the matrix products DP adds). Debian's LibTorch 1.13 has no
// Kineto, but the legacy profiler records FLOPs in its C++ API; its counter reports nothing for
// in-place addmm_ and for convolutions called with integer padding (the quantiser's distances
// and Phi convolutions), so those parts are checked by hand in profile_flops_test.cpp.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <functional>
#include <ostream>
#include <set>
#include <string>

#include "vardp/dp/engine.hpp"
#include "vardp/model/var.hpp"
#include "vardp/model/vqvae.hpp"
#include "vardp/profile/tokenizer_flops.hpp"
#include "vardp/profile/training_flops.hpp"

#if TORCH_VERSION_MAJOR < 2
#include <torch/csrc/autograd/profiler_legacy.h>
#define VARDP_LEGACY_PROFILER 1
#else
#define VARDP_LEGACY_PROFILER 0
#endif

namespace vardp::profile {
namespace {

struct Measured {
  double matmul = 0;  // aten::mm, addmm, bmm, baddbmm
  double conv = 0;    // aten::conv2d
};

#if VARDP_LEGACY_PROFILER
Measured measure(const std::function<void()>& fn) {
  namespace prof = torch::autograd::profiler;
  namespace impl = torch::profiler::impl;
  prof::enableProfilerLegacy(impl::ProfilerConfig(impl::ProfilerState::CPU, /*report_input_shapes=*/true,
                                                  /*profile_memory=*/false, /*with_stack=*/false,
                                                  /*with_flops=*/true));
  try {
    fn();
  } catch (...) {
    prof::disableProfilerLegacy();
    throw;
  }
  prof::thread_event_lists lists = prof::disableProfilerLegacy();
  static const std::set<std::string> matmul{"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"};
  Measured m;
  for (auto& list : lists)
    for (auto& e : list) {
      if (e.kind() != prof::EventKind::PushRange) continue;
      const std::string name = e.name();
      if (matmul.count(name)) m.matmul += static_cast<double>(e.flops());
      if (name == "aten::conv2d") m.conv += static_cast<double>(e.flops());
    }
  return m;
}
#define SKIP_WITHOUT_PROFILER()
#else
Measured measure(const std::function<void()>&) { return {}; }
#define SKIP_WITHOUT_PROFILER() GTEST_SKIP() << "cross-checked against LibTorch 1.13's legacy profiler only"
#endif

struct Tiny {
  model::VAR var{nullptr};
  int64_t E = 0, k = 1;
  torch::Tensor labels, x, targets;  // rows e * k + v
};

Tiny make_tiny(int64_t E, int64_t k) {
  torch::manual_seed(5);
  model::VARConfig c = model::VARConfig::for_depth(2, /*classes=*/5, /*vocab=*/32, /*Cvae=*/8, {1, 2, 3, 4});
  c.embed_dim = 64;
  c.num_heads = 2;
  c.drop_path_rate = 0;
  Tiny t;
  t.var = model::VAR(c);
  t.var->train();
  t.E = E;
  t.k = k;
  t.labels = torch::randint(0, c.num_classes, {E}, torch::kLong).repeat_interleave(k);
  t.x = torch::randn({E * k, c.L() - c.first_l(), c.Cvae});
  t.targets = torch::randint(0, c.vocab_size, {E * k, c.L()}, torch::kLong);
  return t;
}

void adapt(model::VARImpl& var, const std::string& method) {
  if (method == "lora") {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(3);
    for (auto& b : var.blocks)
      for (model::LinearImpl* l :
           {b->attn->mat_qkv.get(), b->attn->proj.get(), b->ffn->fc1.get(), b->ffn->fc2.get(), b->ada_lin_linear.get()})
        l->enable_lora(4, 8.0, 0.0, "kaiming", gen);
  }
  for (auto& item : var.named_parameters(true)) {
    const std::string& n = item.key();
    bool train = true;
    if (method == "lora") train = n.find(".lora_") != std::string::npos || n == "class_emb.weight";
    if (method == "lntune") train = n.find(".ada_lin.") != std::string::npos && n.rfind("head_nm", 0) != 0;
    item.value().set_requires_grad(train);
  }
}

TrainingFlopModel flop_model(const Tiny& t, std::optional<DpCostOptions> dp) {
  // The VQ-VAE is not run in these steps; its rows are not compared.
  return TrainingFlopModel(describe_training(*t.var), TokenizerFlops{}, true, config::TrainConfig{}, dp);
}

StepShape one_rank(const std::vector<int64_t>& example_of_unit, int64_t micro_batch, int64_t k) {
  return shape_from_units({example_of_unit}, micro_batch, k);
}

class PlainStep : public ::testing::TestWithParam<std::string> {};

TEST_P(PlainStep, ProfilerMatmulFlopsEqualForwardPlusBackward) {
  SKIP_WITHOUT_PROFILER();
  Tiny t = make_tiny(3, 1);
  adapt(*t.var, GetParam());
  Measured m = measure([&] {
    torch::Tensor logits = t.var->forward(t.labels, t.x);
    model::cross_entropy_loss(logits, t.targets).mean.backward();
  });
  StepFlops f = flop_model(t, std::nullopt).step(one_rank({0, 1, 2}, 3, 1));
  EXPECT_GT(m.matmul, 0.0);
  EXPECT_NEAR(m.matmul / (f.forward + f.backward), 1.0, 1e-9)
      << GetParam() << ": profiler " << m.matmul << ", analytic " << f.forward + f.backward;
}

INSTANTIATE_TEST_SUITE_P(Methods, PlainStep, ::testing::Values("full", "lora", "lntune"));

struct DpCase {
  std::string method;
  dp::GradStrategy strategy;
  int64_t micro_batch;  // units (example x view) per micro-batch; k = 2 views, 3 examples
};

// Readable test names (CTest shows the parameter).
void PrintTo(const DpCase& c, std::ostream* os) {
  *os << c.method << "/" << dp::grad_strategy_name(c.strategy) << "/mb" << c.micro_batch;
}

class DpStep : public ::testing::TestWithParam<DpCase> {};

TEST_P(DpStep, ProfilerMatmulFlopsEqualForwardBackwardAndDpProducts) {
  SKIP_WITHOUT_PROFILER();
  const DpCase& p = GetParam();
  Tiny t = make_tiny(3, 2);
  adapt(*t.var, p.method);
  dp::TrainableSet set = dp::TrainableSet::from_module(
      *t.var, [&](const std::string& n) { return t.var->named_parameters(true)[n].requires_grad(); });
  dp::DpEngine engine(*t.var, set, dp::EngineOptions{p.strategy, dp::NormRule::cost, 1.0, t.k});
  std::vector<int64_t> units;  // (example, view) in lot order, as dp_units lays them out
  for (int64_t e = 0; e < t.E; ++e)
    for (int64_t v = 0; v < t.k; ++v) units.push_back(e);
  engine.begin_step({0, 1, 2});
  Measured m = measure([&] {
    for (size_t lo = 0; lo < units.size(); lo += static_cast<size_t>(p.micro_batch)) {
      const size_t hi = std::min(units.size(), lo + static_cast<size_t>(p.micro_batch));
      std::vector<int64_t> rows, ids;
      for (size_t u = lo; u < hi; ++u) {
        rows.push_back(static_cast<int64_t>(u));  // row e * k + v
        ids.push_back(units[u]);
      }
      torch::Tensor r = torch::tensor(rows, torch::kLong);
      engine.feed(dp::MicroBatch{ids, dp::var_row_loss(t.var, t.labels.index_select(0, r), t.x.index_select(0, r),
                                                       t.targets.index_select(0, r))});
    }
  });
  StepFlops f = flop_model(t, DpCostOptions{p.strategy, dp::NormRule::cost}).step(one_rank(units, p.micro_batch, t.k));
  const double analytic = f.forward + f.backward + f.dp_extra_matmul;
  EXPECT_GT(f.dp_extra, 0.0);
  EXPECT_NEAR(m.matmul / analytic, 1.0, 1e-9)
      << p.method << " " << dp::grad_strategy_name(p.strategy) << " mb " << p.micro_batch << ": profiler " << m.matmul
      << ", analytic " << analytic << " (DP matmul " << f.dp_extra_matmul << ")";
  if (p.strategy == dp::GradStrategy::bk && p.micro_batch >= 4) EXPECT_GT(f.dp_extra_matmul, 0.0);
}

INSTANTIATE_TEST_SUITE_P(
    Strategies, DpStep,
    ::testing::Values(DpCase{"full", dp::GradStrategy::bk, 6},  // three whole examples
                      DpCase{"full", dp::GradStrategy::bk, 5},  // example 2 split: instantiated + plain
                      DpCase{"lora", dp::GradStrategy::bk, 4},  // two whole examples per micro-batch
                      DpCase{"lora", dp::GradStrategy::bk, 3},  // split examples in every micro-batch
                      DpCase{"lntune", dp::GradStrategy::bk, 6}, DpCase{"full", dp::GradStrategy::instantiate, 5},  //
                      DpCase{"lora", dp::GradStrategy::reference, 6},                                               //
                      DpCase{"lora", dp::GradStrategy::bk, 2}));  // one example per micro-batch

TEST(TokenizerMeasured, EncoderConvolutionsAndAttention) {
  SKIP_WITHOUT_PROFILER();
  torch::manual_seed(2);
  model::VQVAEConfig c;
  c.vocab_size = 32;
  c.z_channels = 8;
  c.ch = 32;
  c.ch_mult = {1, 2, 2};
  c.v_patch_nums = {1, 2, 4};  // 16 x 16 images
  model::VQVAE vae(c);
  vae->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor img = torch::rand({2, 3, 16, 16}) * 2 - 1;
  Measured m = measure([&] { vae->encode_f(img); });
  const TokenizerFlops f = tokenizer_flops(c);
  EXPECT_NEAR((m.conv + m.matmul) / (2 * f.encoder), 1.0, 1e-9)
      << "profiler " << m.conv << " + " << m.matmul << ", analytic 2 x " << f.encoder;
}

}  // namespace
}  // namespace vardp::profile
