// Unit tests of the model area that need no fixture: Phi index rule, hyperparameter inference
// and strict loading, sampling filters, label dropout, and the per-example-gradient hooks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "vardp/compat/torch_compat.hpp"
#include "vardp/io/state_dict.hpp"
#include "vardp/model/grad_hooks.hpp"
#include "vardp/model/infer.hpp"
#include "vardp/model/sampling.hpp"
#include "vardp/util/error.hpp"

namespace vardp::model {
namespace {

io::StateDict state_dict_of(const torch::nn::Module& m) {
  io::StateDict sd;
  for (const auto& p : m.named_parameters(true)) sd.insert(p.key(), p.value().detach().clone());
  for (const auto& b : m.named_buffers(true)) sd.insert(b.key(), b.value().detach().clone());
  return sd;
}

VQVAEConfig tiny_vae(int64_t share) {
  VQVAEConfig c;
  c.vocab_size = 64;
  c.z_channels = 8;
  c.ch = 32;
  c.ch_mult = {1, 2};
  c.num_res_blocks = 1;
  c.share_quant_resi = share;
  c.v_patch_nums = {1, 2, 4};
  return c;
}

VARConfig tiny_var(bool shared_aln = false, bool l2 = true) {
  VARConfig c = VARConfig::for_depth(2, /*num_classes=*/5, /*vocab=*/64, /*Cvae=*/8, {1, 2, 4});
  c.embed_dim = 64;
  c.num_heads = 2;
  c.shared_aln = shared_aln;
  c.attn_l2_norm = l2;
  c.drop_path_rate = 0;
  return c;
}

// ---- Phi -----------------------------------------------------------------------------------

TEST(ModelPhi, IndexTablesOfTheOfficialCode) {
  std::vector<int64_t> t10, t5;
  for (int64_t si = 0; si < 10; ++si) t10.push_back(phi_index(4, si, 10));
  for (int64_t si = 0; si < 5; ++si) t5.push_back(phi_index(4, si, 5));
  EXPECT_EQ(t10, (std::vector<int64_t>{0, 0, 1, 1, 1, 2, 2, 3, 3, 3}));
  EXPECT_EQ(t5, (std::vector<int64_t>{0, 1, 2, 2, 3}));
  EXPECT_EQ(phi_index(1, 0, 1), 0);
  // K != 4: linspace(1/2/K, 1 - 1/2/K, K).
  auto t3 = phi_ticks(3);
  EXPECT_DOUBLE_EQ(t3[0], 1.0 / 6);
  EXPECT_DOUBLE_EQ(t3[1], 0.5);
  EXPECT_DOUBLE_EQ(t3[2], 5.0 / 6);
  // Non-shared with one Phi per scale: scale si uses Phi si.
  for (int64_t si = 0; si < 10; ++si) EXPECT_EQ(phi_index(10, si, 10), si);
}

// ---- inference and strict loading ----------------------------------------------------------

TEST(ModelInfer, PatchNumbersFromLevelBuffer) {
  torch::Tensor lvl = torch::tensor({0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2}, torch::kLong).view({1, -1});
  EXPECT_EQ(patch_nums_from_lvl_1L(lvl), (std::vector<int64_t>{1, 2, 3}));
  torch::Tensor not_square = torch::tensor({0, 1, 1, 1}, torch::kLong).view({1, -1});
  EXPECT_THROW(patch_nums_from_lvl_1L(not_square), Error);
  torch::Tensor out_of_order = torch::tensor({0, 2, 2, 2, 2}, torch::kLong).view({1, -1});
  try {
    patch_nums_from_lvl_1L(out_of_order);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected 1"), std::string::npos) << e.what();
  }
}

TEST(ModelInfer, VqvaeConfigRoundTripsForEveryPhiSharing) {
  for (int64_t share : {0, 1, 2, 4}) {
    SCOPED_TRACE(share);
    VQVAEConfig c = tiny_vae(share);
    VQVAE m(c);
    io::StateDict sd = state_dict_of(*m);
    VQVAEConfig g = infer_vqvae_config(sd, c.v_patch_nums);
    EXPECT_EQ(g.vocab_size, c.vocab_size);
    EXPECT_EQ(g.z_channels, c.z_channels);
    EXPECT_EQ(g.ch, c.ch);
    EXPECT_EQ(g.ch_mult, c.ch_mult);
    EXPECT_EQ(g.num_res_blocks, c.num_res_blocks);
    EXPECT_EQ(g.share_quant_resi, share);
    VQVAE again(g);
    EXPECT_NO_THROW(load_strict(*again, sd, "round trip"));
  }
  // Key names of each sharing follow the official Phi classes.
  EXPECT_TRUE(state_dict_of(*VQVAE(tiny_vae(0))).contains("quantize.quant_resi.2.weight"));
  EXPECT_TRUE(state_dict_of(*VQVAE(tiny_vae(1))).contains("quantize.quant_resi.qresi.weight"));
  EXPECT_TRUE(state_dict_of(*VQVAE(tiny_vae(4))).contains("quantize.quant_resi.qresi_ls.3.bias"));
  // Without attention and with the identity Phi.
  VQVAEConfig plain = tiny_vae(4);
  plain.using_sa = plain.using_mid_sa = false;
  plain.quant_resi = 0;
  io::StateDict sd = state_dict_of(*VQVAE(plain));
  VQVAEConfig g = infer_vqvae_config(sd, plain.v_patch_nums);
  EXPECT_FALSE(g.using_sa);
  EXPECT_FALSE(g.using_mid_sa);
  EXPECT_EQ(g.quant_resi, 0.0);
}

TEST(ModelInfer, VarConfigRoundTrips) {
  for (bool shared : {false, true}) {
    for (bool l2 : {true, false}) {
      VARConfig c = tiny_var(shared, l2);
      if (!l2) c.num_heads = 1;  // 64-wide heads are what inference assumes without scale_mul
      VAR m(c);
      io::StateDict sd = state_dict_of(*m);
      VARConfig g = infer_var_config(sd);
      EXPECT_EQ(g.depth, c.depth);
      EXPECT_EQ(g.embed_dim, c.embed_dim);
      EXPECT_EQ(g.num_heads, c.num_heads);
      EXPECT_EQ(g.vocab_size, c.vocab_size);
      EXPECT_EQ(g.Cvae, c.Cvae);
      EXPECT_EQ(g.num_classes, c.num_classes);
      EXPECT_EQ(g.patch_nums, c.patch_nums);
      EXPECT_EQ(g.shared_aln, shared);
      EXPECT_EQ(g.attn_l2_norm, l2);
      VAR again(g);
      EXPECT_NO_THROW(load_strict(*again, sd, "round trip"));
      EXPECT_TRUE(torch::equal(again->pos_1LC, m->pos_1LC));
    }
  }
}

TEST(ModelInfer, StrictLoadingNamesEveryBadKeyAndChangesNothing) {
  VAR m(tiny_var());
  io::StateDict good = state_dict_of(*m);
  io::StateDict bad;
  for (const auto& k : good.keys()) {
    if (k == "blocks.1.attn.q_bias") continue;  // missing
    torch::Tensor t = good.at(k);
    if (k == "head.weight") t = torch::zeros({3, 3});  // wrong shape
    bad.insert(k, t);
  }
  bad.insert("blocks.7.extra", torch::zeros({1}));  // unexpected
  VAR target(tiny_var());
  torch::Tensor before = target->pos_1LC.detach().clone();
  try {
    load_strict(*target, bad, "test checkpoint");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("test checkpoint"), std::string::npos) << msg;
    EXPECT_NE(msg.find("blocks.1.attn.q_bias"), std::string::npos) << msg;
    EXPECT_NE(msg.find("blocks.7.extra"), std::string::npos) << msg;
    EXPECT_NE(msg.find("head.weight"), std::string::npos) << msg;
  }
  EXPECT_TRUE(torch::equal(target->pos_1LC, before));
  // Half-precision checkpoints load into float32 models.
  io::StateDict half;
  for (const auto& k : good.keys()) {
    torch::Tensor t = good.at(k);
    half.insert(k, t.is_floating_point() ? t.to(torch::kHalf) : t);
  }
  EXPECT_NO_THROW(load_strict(*target, half, "half"));
  EXPECT_TRUE(torch::allclose(target->pos_1LC, m->pos_1LC, 1e-2, 1e-3));
}

// ---- sampling filters ----------------------------------------------------------------------

TEST(ModelSampling, TopKKeepsTiesAndTopPKeepsTheMostLikely) {
  torch::Tensor logits = torch::tensor({3.f, 3.f, 3.f, 1.f, 0.f}).view({1, 1, 5});
  torch::Tensor kept = filter_top_k_top_p_(logits, 1, 0.0);
  EXPECT_EQ(kept.item<int>(), 3);
  EXPECT_TRUE(std::isinf(logits[0][0][3].item<float>()));

  torch::Tensor l2 = torch::tensor({0.f, 10.f, 0.f, 0.f}).view({1, 1, 4});
  EXPECT_EQ(filter_top_k_top_p_(l2, 0, 0.5).item<int>(), 1);
  EXPECT_EQ(l2[0][0][1].item<float>(), 10.f);

  torch::Tensor big = torch::randn({2, 3, 16});
  torch::Tensor copy = big.clone();
  EXPECT_TRUE(filter_top_k_top_p_(copy, 100, 0.0).eq(16).all().item<bool>());  // k clamped to V

  // Greedy sampling picks the arg-max whatever the generator.
  torch::Tensor g = torch::randn({2, 3, 16});
  torch::Tensor want = g.argmax(-1);
  torch::Tensor idx = sample_with_top_k_top_p_(g, 1, 0.0, compat::make_generator(torch::kCPU, 3));
  EXPECT_TRUE(torch::equal(idx, want));
}

// ---- forward options -----------------------------------------------------------------------

TEST(ModelVar, LabelDropoutOnlyWhenAskedAndMaskEqualsNullClass) {
  torch::manual_seed(0);
  VAR m(tiny_var());
  m->eval();
  torch::NoGradGuard no_grad;
  const int64_t B = 3, L = m->config().L();
  torch::Tensor x = torch::randn({B, L - 1, 8});
  torch::Tensor labels = torch::tensor({0, 1, 4}, torch::kLong);
  torch::Tensor a = m->forward(labels, x);
  torch::Tensor b = m->forward(labels, x);
  EXPECT_TRUE(torch::equal(a, b));  // no dropout by default, unlike the official forward
  ForwardOptions drop_all;
  drop_all.label_drop_mask = torch::ones({B}, torch::kBool);
  torch::Tensor c = m->forward(labels, x, drop_all);
  torch::Tensor d = m->forward(torch::full({B}, 5, torch::kLong), x);
  EXPECT_TRUE(torch::allclose(c, d));
  ForwardOptions rate_one;
  rate_one.cond_drop_rate = 1.0;
  EXPECT_TRUE(torch::allclose(m->forward(labels, x, rate_one), d));
}

TEST(ModelVqvae, TrainingForwardIsStraightThrough) {
  VQVAEConfig c = tiny_vae(4);
  c.test_mode = false;
  VQVAE m(c);
  torch::Tensor img = torch::rand({2, 3, 8, 8}) * 2 - 1;
  torch::Tensor f = m->encode_f(img);
  QuantizerOutput q = m->quantize->forward(f);
  auto fhats = m->quantize->f_to_idxBl_or_fhat(f.detach(), true);
  EXPECT_TRUE(torch::allclose(q.f_hat, fhats.back(), 1e-5, 1e-6));
  EXPECT_EQ(q.vocab_hits.sum().item<float>(), 2.0f * (1 + 4 + 16));
  auto [rec, loss] = m->forward(img);
  (rec.square().mean() + loss).backward();
  EXPECT_TRUE(m->encoder->conv_in->weight.grad().defined());
  EXPECT_GT(m->encoder->conv_in->weight.grad().abs().sum().item<double>(), 0);
}

// ---- gradient hooks ------------------------------------------------------------------------

// Replicates every small parameter per example and records every linear layer.
class Recorder : public GradObserver {
 public:
  void on_linear(const LinearImpl& layer, const at::Tensor& input, const at::Tensor& output) override {
    linear_paths.insert(layer.path());
    EXPECT_EQ(input.size(-1), layer.in_features());
    EXPECT_EQ(output.size(-1), layer.out_features());
  }
  at::Tensor on_param(const std::string& name, const at::Tensor& param, int64_t batch) override {
    std::vector<int64_t> reps(param.dim() + 1, 1);
    reps[0] = batch;
    at::Tensor r = param.detach().unsqueeze(0).repeat(reps).requires_grad_(true);
    replicas[name] = r;
    return r;
  }
  std::set<std::string> linear_paths;
  std::map<std::string, at::Tensor> replicas;
};

TEST(ModelHooks, PerExampleReplicasGiveTheBatchGradientAndEveryLinearIsSeen) {
  for (bool shared : {false, true}) {
    SCOPED_TRACE(shared);
    torch::manual_seed(1);
    VAR m(tiny_var(shared));
    m->eval();
    // Make every small parameter matter.
    {
      torch::NoGradGuard no_grad;
      for (auto& p : m->parameters()) p.add_(torch::randn_like(p) * 0.1);
    }
    const int64_t B = 3, L = m->config().L();
    torch::Tensor x = torch::randn({B, L - 1, 8});
    torch::Tensor labels = torch::tensor({0, 2, 5}, torch::kLong);
    torch::Tensor gt = torch::randint(0, 64, {B, L}, torch::kLong);

    m->zero_grad();
    torch::Tensor plain = m->forward(labels, x);
    model::cross_entropy_loss(plain, gt).per_example.sum().backward();
    auto params = m->named_parameters(true);
    std::map<std::string, torch::Tensor> batch_grad;
    for (const auto& p : params) batch_grad[p.key()] = p.value().grad().clone();

    Recorder rec;
    {
      ScopedGradObserver scope(*m, &rec);
      m->zero_grad();
      torch::Tensor hooked = m->forward(labels, x);
      EXPECT_TRUE(torch::allclose(hooked, plain, 1e-5, 1e-5));
      model::cross_entropy_loss(hooked, gt).per_example.sum().backward();
    }
    std::set<std::string> expected_linear;
    for (const auto& item : m->named_modules("", false))
      if (dynamic_cast<LinearImpl*>(item.value().get())) expected_linear.insert(item.key());
    EXPECT_EQ(rec.linear_paths, expected_linear);

    std::set<std::string> small = {"pos_start", "pos_1LC", "lvl_embed.weight", "class_emb.weight"};
    for (int64_t i = 0; i < m->config().depth; ++i) {
      small.insert("blocks." + std::to_string(i) + ".attn.q_bias");
      small.insert("blocks." + std::to_string(i) + ".attn.v_bias");
      small.insert("blocks." + std::to_string(i) + ".attn.scale_mul_1H11");
      if (shared) small.insert("blocks." + std::to_string(i) + ".ada_gss");
    }
    std::set<std::string> seen;
    for (const auto& [name, r] : rec.replicas) seen.insert(name);
    EXPECT_EQ(seen, small);
    for (const auto& [name, r] : rec.replicas) {
      ASSERT_TRUE(r.grad().defined()) << name;
      ASSERT_EQ(batch_grad.count(name), 1u) << name;
      const torch::Tensor& want = batch_grad[name];
      // Sum over examples of the per-example gradients = the batch gradient.
      EXPECT_TRUE(torch::allclose(r.grad().sum(0), want, 1e-4, 1e-6)) << name;
      EXPECT_GT(want.abs().sum().item<double>(), 0) << name;
      // The real parameter got no gradient through the replica.
      EXPECT_TRUE(!params.find(name)->grad().defined() || params.find(name)->grad().abs().sum().item<double>() == 0)
          << name;
    }
    // Example 0's replica gradient equals the gradient of example 0 alone.
    m->zero_grad();
    model::cross_entropy_loss(m->forward(labels.slice(0, 0, 1), x.slice(0, 0, 1)), gt.slice(0, 0, 1))
        .per_example.sum()
        .backward();
    EXPECT_TRUE(torch::allclose(rec.replicas["class_emb.weight"].grad()[0], m->class_emb->weight.grad(), 1e-4, 1e-6));
    EXPECT_TRUE(torch::allclose(rec.replicas["blocks.0.attn.q_bias"].grad()[0],
                                m->blocks[0]->attn->q_bias.grad(), 1e-4, 1e-6));
  }
}

TEST(ModelFlops, CountsGrowWithSequenceAndDepth) {
  VARConfig c = tiny_var();
  const double f1 = forward_flops(c, 1);
  EXPECT_DOUBLE_EQ(forward_flops(c, 4), 4 * f1);
  VARConfig deeper = c;
  deeper.depth = 4;
  EXPECT_GT(forward_flops(deeper, 1), f1);
  // VAR-d16 at 256px: about 310M parameters x 680 tokens x 2 dominates.
  VARConfig d16 = VARConfig::for_depth(16);
  const double f = forward_flops(d16, 1);
  EXPECT_GT(f, 2.0 * 300e6 * 680 * 0.5);
  EXPECT_LT(f, 2.0 * 310e6 * 680 * 2);
}

}  // namespace
}  // namespace vardp::model
