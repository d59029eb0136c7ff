// The analytic FLOP model of VAR training (issue 7, acceptance 4) against hand computations on the
// paper's VAR-d16: full fine-tuning within 2% of 6 x (per-token matmul parameters) x L plus the
// attention products; LoRA and LNTuning with weight gradients of their trained tensors only; DP
// extras reported apart, augmentation multiplicity scaling forward and backward.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <string>

#include "vardp/model/init_control.hpp"
#include "vardp/model/var.hpp"
#include "vardp/model/vqvae.hpp"
#include "vardp/profile/tokenizer_flops.hpp"
#include "vardp/profile/training_flops.hpp"
#include "vardp/profile/var_flops.hpp"

namespace vardp::profile {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// VAR-d16 as the paper trains it (C = 1024, 16 heads, patch_nums 1..16: L = 680, V = 4096,
// Cvae = 32, 1000 classes). Shapes only: no initialisation.
model::VAR var_d16() {
  model::SkipInitScope shapes_only;
  return model::VAR(model::VARConfig::for_depth(16));
}

void freeze(model::VARImpl& var) {
  for (auto& p : var.parameters()) p.set_requires_grad(false);
}

// LoRA (rank r) on every target layer of the attn, mlp and adaln groups, as adapt_var does.
void add_lora(model::VARImpl& var, int64_t r) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1);
  for (auto& b : var.blocks)
    for (model::LinearImpl* l :
         {b->attn->mat_qkv.get(), b->attn->proj.get(), b->ffn->fc1.get(), b->ffn->fc2.get(), b->ada_lin_linear.get()})
      l->enable_lora(r, 2.0 * static_cast<double>(r), 0.0, "kaiming", gen);
  for (auto& item : var.named_parameters(true))
    item.value().set_requires_grad(item.key().find(".lora_") != std::string::npos || item.key() == "class_emb.weight");
}

StepShape one_rank(int64_t examples, int64_t views, int64_t micro_batch) {
  std::vector<int64_t> units;
  for (int64_t e = 0; e < examples; ++e)
    for (int64_t v = 0; v < views; ++v) units.push_back(e);
  return shape_from_units({units}, micro_batch, views);
}

config::TrainConfig adamw() { return config::TrainConfig{}; }

TEST(ProfileD16, FullFineTuningMatchesSixNLPlusAttention) {
  model::VAR var = var_d16();
  const model::VARConfig& c = var->config();
  ASSERT_EQ(c.L(), 680);
  // Matmul parameters: weights of the linear layers applied per token, counted on the real model.
  int64_t matmul_params = 0;
  for (const auto& item : var->named_parameters(true)) {
    const std::string& n = item.key();
    if (ends_with(n, "attn.mat_qkv.weight") || ends_with(n, "attn.proj.weight") || ends_with(n, "ffn.fc1.weight") ||
        ends_with(n, "ffn.fc2.weight") || n == "head.weight" || n == "word_embed.weight")
      matmul_params += item.value().numel();
  }
  const int64_t C = 1024, V = 4096, Cvae = 32, depth = 16;
  EXPECT_EQ(matmul_params, depth * (3 * C * C + C * C + 4 * C * C + 4 * C * C) + C * V + Cvae * C);

  // By hand: 2 FLOPs per multiply-add, forward + backward (input and weight gradients) = 3x the
  // forward = 6 x params x L; per block q k^T and (probabilities) v are 2 L L C each forward,
  // and their backward twice that.
  const double L = 680;
  const double attention_forward_per_block = 2 * 2 * L * L * static_cast<double>(C);
  const double hand = 6.0 * static_cast<double>(matmul_params) * L + 3 * depth * attention_forward_per_block;

  TrainingFlopModel model(describe_training(*var), tokenizer_flops(model::VQVAEConfig{}), /*token_cache=*/true, adamw(),
                          std::nullopt);
  StepFlops step = model.step(one_rank(1, 1, 1));
  const double fwd_bwd = step.forward + step.backward;
  std::printf(
      "VAR-d16 FFT per example: forward %.3f GFLOP, backward %.3f GFLOP, fwd+bwd %.3f GFLOP; "
      "hand 6*%lld*680 + attention = %.3f GFLOP; ratio %.5f\n",
      step.forward / 1e9, step.backward / 1e9, fwd_bwd / 1e9, static_cast<long long>(matmul_params), hand / 1e9,
      fwd_bwd / hand);
  EXPECT_NEAR(fwd_bwd / hand, 1.0, 0.02);
  // Full fine-tuning trains everything: the backward is the input gradients of every layer but
  // word_embed (its input is the frozen VQ-VAE's) plus every weight gradient.
  EXPECT_GT(step.backward, 1.9 * step.forward);
  EXPECT_LT(step.backward, 2.0 * step.forward);
  // The per-module rows add up to the totals.
  double f = 0, b = 0;
  for (const auto& m : step.modules)
    if (!m.tokenizer) {
      f += m.forward;
      b += m.backward();
    }
  EXPECT_DOUBLE_EQ(f, step.forward);
  EXPECT_DOUBLE_EQ(b, step.backward);
  // Attention as the code computes it: full L x L products in every block.
  for (const auto& m : step.modules)
    if (m.name == "blocks.attn.scores" || m.name == "blocks.attn.values") {
      EXPECT_EQ(m.instances, depth);
      EXPECT_DOUBLE_EQ(m.forward, depth * 2 * L * L * static_cast<double>(C));
    }
  // The old analytic forward of model::forward_flops agrees with the forward rows.
  EXPECT_NEAR(step.forward / model::forward_flops(c, 1), 1.0, 1e-12);
  EXPECT_EQ(step.dp_extra, 0.0);
  EXPECT_DOUBLE_EQ(
      step.optimizer, 13.0 * static_cast<double>(model::count_parameters(*var)) + [&] {
        double decayed = 0;
        for (const auto& p : var->parameters())
          if (p.dim() >= 2) decayed += static_cast<double>(p.numel());
        return decayed;
      }());
}

TEST(ProfileD16, LoraTrainsOnlyItsFactors) {
  model::VAR var = var_d16();
  const int64_t r = 16, C = 1024, depth = 16;
  const double L = 680;
  add_lora(*var, r);
  VarTrainingGraph g = describe_training(*var);
  TrainingFlopModel model(g, tokenizer_flops(model::VQVAEConfig{}), true, adamw(), std::nullopt);
  const double fwd = model.forward_per_view(), bwd = model.backward_per_view();
  std::printf("VAR-d16 LoRA r=16 per example-view: forward %.3f GFLOP, backward %.3f GFLOP\n", fwd / 1e9, bwd / 1e9);
  EXPECT_LT(bwd, 2.0 * fwd);
  EXPECT_GT(bwd, 0.9 * fwd);  // the input gradients still run through every layer
  // Weight gradients: the LoRA factors only, 2 T (in r + r out) per adapted layer, by hand.
  auto lora = [&](double in, double out, double T) { return 2 * T * (in * r + r * out); };
  const double per_block = lora(C, 3 * C, L) + lora(C, C, L) + lora(C, 4 * C, L) + lora(4 * C, C, L) +
                           lora(C, 6 * C, 1);  // ada_lin acts once per example
  double weight = 0;
  for (const auto& m : module_flops(g)) weight += m.backward_weight;
  EXPECT_NEAR(weight / (depth * per_block), 1.0, 1e-12);
  for (const auto& s : g.linears) {
    const bool factor = s.path.find(".lora_") != std::string::npos;
    EXPECT_EQ(s.weight_trained, factor) << s.path;
    if (!factor) EXPECT_EQ(s.backward_weight(), 0.0) << s.path;
  }
  // The class embedding is trained: every layer's input carries a gradient (word_embed's never).
  for (const auto& s : g.linears) EXPECT_EQ(s.input_grad, s.path.rfind("word_embed", 0) != 0) << s.path;
}

TEST(ProfileD16, LnTuningTrainsOnlyTheAdaLnLinears) {
  model::VAR var = var_d16();
  const int64_t C = 1024, depth = 16;
  for (auto& item : var->named_parameters(true)) {
    const std::string& n = item.key();
    item.value().set_requires_grad(n.rfind("blocks.", 0) == 0 && n.find(".ada_lin.") != std::string::npos);
  }
  VarTrainingGraph g = describe_training(*var);
  TrainingFlopModel model(g, tokenizer_flops(model::VQVAEConfig{}), true, adamw(), std::nullopt);
  EXPECT_LT(model.backward_per_view(), 2.0 * model.forward_per_view());
  double weight = 0;
  for (const auto& m : module_flops(g)) weight += m.backward_weight;
  EXPECT_DOUBLE_EQ(weight, static_cast<double>(depth) * 2.0 * C * 6 * C);  // ada_lin: one row per example
  // Nothing upstream of block 0's AdaLN output is trained: word_embed and block 0's ada_lin pass no
  // input gradient; everything after the first modulation does.
  for (const auto& s : g.linears) {
    const bool upstream = s.path == "word_embed" || s.path == "blocks.0.ada_lin.1" ||
                          (s.path.find(".ada_lin.1") != std::string::npos) || s.path == "head_nm.ada_lin.1";
    EXPECT_EQ(s.input_grad, !upstream) << s.path;
  }
}

TEST(ProfileD16, DpExtrasAreSeparateAndViewsScaleTheStep) {
  model::VAR var = var_d16();
  add_lora(*var, 16);
  VarTrainingGraph g = describe_training(*var);
  const TokenizerFlops tok = tokenizer_flops(model::VQVAEConfig{});
  TrainingFlopModel bk(g, tok, false, adamw(), DpCostOptions{dp::GradStrategy::bk, dp::NormRule::cost});
  TrainingFlopModel inst(g, tok, false, adamw(), DpCostOptions{dp::GradStrategy::instantiate, dp::NormRule::cost});
  TrainingFlopModel plain(g, tok, false, adamw(), std::nullopt);

  const int64_t lot = 8;
  StepFlops k4 = bk.step(one_rank(lot, 4, 8));  // 2 whole examples per micro-batch
  StepFlops k1 = bk.step(one_rank(lot, 1, 8));
  StepFlops no_dp = plain.step(one_rank(lot, 4, 8));
  std::printf(
      "VAR-d16 DP-LoRA bk k=4, lot 8: fwd+bwd %.3f TFLOP, tokenize %.3f TFLOP, DP extra %.3f TFLOP "
      "(matmul %.3f), optimizer %.6f TFLOP\n",
      (k4.forward + k4.backward) / 1e12, k4.tokenize / 1e12, k4.dp_extra / 1e12, k4.dp_extra_matmul / 1e12,
      k4.optimizer / 1e12);
  EXPECT_GT(k4.dp_extra, 0.0);
  EXPECT_GT(k4.dp_extra_matmul, 0.0);
  EXPECT_EQ(no_dp.dp_extra, 0.0);
  // The paper's count is forward + backward (+ tokenisation), the same with and without DP.
  EXPECT_DOUBLE_EQ(k4.total(), no_dp.total());
  EXPECT_DOUBLE_EQ(k4.total(), k4.tokenize + k4.forward + k4.backward);
  EXPECT_DOUBLE_EQ(k4.executed(), k4.total() + k4.dp_extra + k4.optimizer);
  // k views: k times the forward, backward and tokenisation of one view per example.
  EXPECT_DOUBLE_EQ(k4.rows, 32.0);
  EXPECT_DOUBLE_EQ(k4.forward, 4 * k1.forward);
  EXPECT_DOUBLE_EQ(k4.backward, 4 * k1.backward);
  EXPECT_DOUBLE_EQ(k4.tokenize, 4 * k1.tokenize);
  EXPECT_DOUBLE_EQ(k4.forward, 32 * bk.forward_per_view());
  // The per-module DP rows add up to the step's DP extra.
  double dp_rows = 0;
  for (const auto& m : k4.modules) dp_rows += m.dp_extra;
  EXPECT_DOUBLE_EQ(dp_rows, k4.dp_extra);
  // Noise: one draw and one addition per trained element on rank 0, the division by qN.
  const double P = static_cast<double>(g.trained_numel());
  for (const auto& m : k4.modules)
    if (m.name == "dp.noise") EXPECT_DOUBLE_EQ(m.dp_extra, 3 * P);
  // Instantiation: the per-example weight gradients are the weight gradient; its extras are the
  // flat norms and clipped sums (4 P per example) and the micro-batch sums (P each).
  StepFlops ik4 = inst.step(one_rank(lot, 4, 8));
  EXPECT_EQ(ik4.dp_extra_matmul, 0.0);
  EXPECT_DOUBLE_EQ(ik4.dp_extra, 4 * P * lot + P * 4 + 3 * P);
  // One example per micro-batch (k = micro-batch): plain backward per example, 4 P clipping each.
  StepFlops one = bk.step(one_rank(lot, 4, 4));
  EXPECT_DOUBLE_EQ(one.dp_extra, 4 * P * lot + 3 * P);
}

TEST(ProfileTokenizer, QuantizerByHand) {
  model::VQVAEConfig c;  // vae_ch160v4096z32: V = 4096, Cvae = 32, 10 scales up to 16 x 16
  TokenizerFlops f = tokenizer_flops(c);
  double pn2 = 0;
  for (int64_t pn : c.v_patch_nums) pn2 += static_cast<double>(pn * pn);
  const double phi = 2.0 * 16 * 16 * 32 * 32 * 9;  // a 3x3 Cvae -> Cvae convolution at 16 x 16
  EXPECT_DOUBLE_EQ(f.quantize, 2 * pn2 * 32 * 4096 + 10 * phi);
  EXPECT_DOUBLE_EQ(f.var_input, 9 * phi);
  // conv_in alone: 3 -> 160 channels, 3x3, at 256 x 256.
  EXPECT_GT(f.encoder, 2.0 * 256 * 256 * 160 * 3 * 9);
  std::printf("VQ-VAE (ch 160) per image: encoder %.3f GFLOP, quantizer %.3f GFLOP, var_input %.4f GFLOP\n",
              f.encoder / 1e9, f.quantize / 1e9, f.var_input / 1e9);
}

TEST(ProfileShape, MicroBatchesFollowTheUnits) {
  // Rank 0 runs examples 0, 0, 1, 1, 2; rank 1 runs 2, 3, 3 with micro-batch 2.
  StepShape s = shape_from_units({{0, 0, 1, 1, 2}, {2, 3, 3}}, 2, 2);
  EXPECT_EQ(s.examples, 4);
  EXPECT_EQ(s.ranks, 2);
  EXPECT_EQ(s.rows(), 8);
  ASSERT_EQ(s.micro_batches.size(), 5u);
  EXPECT_EQ(s.micro_batches[0].views, (std::vector<int64_t>{2}));
  EXPECT_EQ(s.micro_batches[2].views, (std::vector<int64_t>{1}));
  EXPECT_EQ(s.micro_batches[3].views, (std::vector<int64_t>{1, 1}));
}

TEST(ProfileGraph, RejectsNothingTheModelRuns) {
  // Every linear layer of a shared-AdaLN VAR is placed (the builder throws otherwise).
  model::VARConfig c = model::VARConfig::for_depth(2, 4, 16, 4, {1, 2});
  c.embed_dim = 32;
  c.num_heads = 2;
  c.shared_aln = true;
  model::VAR var(c);
  VarTrainingGraph g = describe_training(*var);
  EXPECT_EQ(g.linears.front().path, "word_embed");
  EXPECT_EQ(g.linears[1].path, "shared_ada_lin.1");
  EXPECT_EQ(g.linears.back().path, "head");
  EXPECT_EQ(g.attention.size(), 2u);
}

}  // namespace
}  // namespace vardp::profile
