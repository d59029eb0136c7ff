// Adaptations (LoRA on every target group, mat_qkv included; LayerNorm tuning; new class
// embeddings), the optimizer against LibTorch's own AdamW/SGD, the schedule, and the work split.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include "vardp/model/var.hpp"
#include "vardp/train/adaptation.hpp"
#include "vardp/train/optimizer.hpp"
#include "vardp/train/work_split.hpp"
#include "vardp/util/error.hpp"

namespace vardp::train {
namespace {

model::VAR tiny_var(uint64_t seed = 3) {
  torch::manual_seed(seed);
  model::VARConfig c = model::VARConfig::for_depth(2, 5, 32, 8, {1, 2, 3});
  c.embed_dim = 32;
  c.num_heads = 2;
  c.drop_path_rate = 0;
  model::VAR v(c);
  torch::NoGradGuard g;
  for (auto& p : v->parameters()) p.add_(torch::randn_like(p) * 0.05);
  return v;
}

torch::Tensor logits(model::VAR& v, int64_t B = 3) {
  torch::manual_seed(99);
  const auto& c = v->config();
  torch::Tensor labels = torch::randint(0, c.num_classes, {B}, torch::kLong);
  torch::Tensor x = torch::randn({B, c.L() - c.first_l(), c.Cvae});
  return v->forward(labels, x);
}

config::AdaptConfig lora(std::vector<std::string> targets, int64_t r = 4) {
  config::AdaptConfig a;
  a.method = "lora";
  a.lora_rank = r;
  a.lora_alpha = 2.0 * static_cast<double>(r);
  a.lora_targets = std::move(targets);
  a.train_class_emb = false;
  return a;
}

TEST(Lora, StartsAsTheBaseModelAndCountsFactors) {
  model::VAR base = tiny_var(), adapted = tiny_var();
  AdaptationReport rep = adapt_var(*adapted, lora({"attn", "mlp", "adaln"}), 7);
  EXPECT_TRUE(torch::allclose(logits(base), logits(adapted), 0, 0));  // B = 0 at init
  // Per block: mat_qkv 4*(32+96) + proj 4*(32+32) + fc1 4*(32+128) + fc2 4*(128+32) + ada_lin 4*(32+192).
  const int64_t per_block = 4 * (128 + 64 + 160 + 160 + 224);
  EXPECT_EQ(rep.adapter_params, 2 * per_block);
  EXPECT_EQ(rep.class_emb_params, 0);
  EXPECT_EQ(rep.lora_layers.size(), 10u);
  for (const auto& n : rep.trainable) EXPECT_NE(n.find(".lora_"), std::string::npos) << n;
}

TEST(Lora, EveryTargetGroupChangesTheOutputMatQkvIncluded) {
  for (const std::string group : {"attn", "mlp", "adaln", "head"}) {
    model::VAR base = tiny_var(), v = tiny_var();
    AdaptationReport rep = adapt_var(*v, lora({group}), 7);
    // Perturb only the LoRA B factors of one layer at a time: every listed layer must matter.
    for (const auto& layer : rep.lora_layers) {
      model::VAR w = tiny_var();
      adapt_var(*w, lora({group}), 7);
      torch::NoGradGuard g;
      for (auto& p : w->named_parameters(true))
        if (p.key() == layer + ".lora_B.weight") p.value().add_(0.5);
      EXPECT_FALSE(torch::allclose(logits(base), logits(w), 1e-6, 1e-6)) << layer << " has no effect";
    }
  }
}

TEST(Lora, MergeFoldsTheFactorsIntoTheWeight) {
  model::VAR v = tiny_var();
  adapt_var(*v, lora({"attn", "mlp", "adaln", "head"}), 7);
  {
    torch::NoGradGuard g;
    for (auto& p : v->named_parameters(true))
      if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0, 0.1);
  }
  torch::Tensor before = logits(v);
  int merged = 0;
  for (auto& item : v->named_modules("", false))
    if (auto* lin = dynamic_cast<model::LinearImpl*>(item.value().get()); lin && lin->has_lora()) {
      lin->merge_lora();
      ++merged;
    }
  EXPECT_EQ(merged, 12);
  for (auto& p : v->named_parameters(true)) EXPECT_EQ(p.key().find("lora"), std::string::npos) << p.key();
  EXPECT_TRUE(torch::allclose(before, logits(v), 1e-4, 1e-5));
}

TEST(Adaptation, LntuneTrainsTheAdaLNLinearsAndFullTrainsEverything) {
  model::VAR v = tiny_var();
  config::AdaptConfig a;
  a.method = "lntune";
  a.train_class_emb = false;
  AdaptationReport rep = adapt_var(*v, a, 1);
  EXPECT_EQ(rep.adapter_params, 2 * (32 * 192 + 192));
  a.lntune_head = true;
  model::VAR h = tiny_var();
  EXPECT_EQ(adapt_var(*h, a, 1).adapter_params, 2 * (32 * 192 + 192) + 32 * 64 + 64);
  model::VAR f = tiny_var();
  config::AdaptConfig full;
  full.method = "full";
  AdaptationReport fr = adapt_var(*f, full, 1);
  EXPECT_EQ(fr.trainable_params, model::count_parameters(*f));
  EXPECT_EQ(fr.class_emb_params, 0);  // part of the model in full fine-tuning
}

TEST(Adaptation, NewClassEmbeddingIsSeededAndOnTop) {
  config::AdaptConfig a = lora({"attn"});
  a.num_classes = 9;
  a.train_class_emb = true;
  model::VAR v1 = tiny_var(), v2 = tiny_var(), v3 = tiny_var();
  AdaptationReport rep = adapt_var(*v1, a, 5);
  adapt_var(*v2, a, 5);
  adapt_var(*v3, a, 6);
  EXPECT_EQ(v1->config().num_classes, 9);
  EXPECT_EQ(v1->class_emb->weight.size(0), 10);
  EXPECT_EQ(rep.class_emb_params, 10 * 32);
  EXPECT_TRUE(torch::equal(v1->class_emb->weight, v2->class_emb->weight));
  EXPECT_FALSE(torch::equal(v1->class_emb->weight, v3->class_emb->weight));
  EXPECT_TRUE(v1->class_emb->weight.requires_grad());
  EXPECT_THROW(adapt_var(*tiny_var(), lora({"attention"}), 1), UsageError);
}

// AdamW and SGD against LibTorch's implementations on the same gradients.
TEST(Optimizer, MatchesLibTorch) {
  for (const std::string kind : {"adamw", "sgd"}) {
    config::TrainConfig tc;
    tc.optimizer = kind;
    tc.weight_decay = 0.1;
    tc.momentum = 0.9;
    torch::manual_seed(1);
    torch::Tensor a = torch::randn({4, 3}).requires_grad_(), b = a.detach().clone().requires_grad_();
    Optimizer mine(tc, {{"w", a}});
    std::unique_ptr<torch::optim::Optimizer> ref;
    if (kind == "adamw")
      ref = std::make_unique<torch::optim::AdamW>(std::vector<torch::Tensor>{b},
                                                  torch::optim::AdamWOptions(0.01).betas({0.9, 0.95}).weight_decay(0.1));
    else
      ref = std::make_unique<torch::optim::SGD>(std::vector<torch::Tensor>{b},
                                                torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(0.1));
    for (int s = 0; s < 5; ++s) {
      torch::Tensor g = torch::randn({4, 3});
      a.mutable_grad() = g.clone();
      b.mutable_grad() = g.clone();
      mine.step(0.01);
      ref->step();
    }
    EXPECT_TRUE(torch::allclose(a, b, 1e-6, 1e-7)) << kind;
    EXPECT_EQ(mine.steps_taken(), 5);
  }
}

TEST(Optimizer, StateRoundTrip) {
  config::TrainConfig tc;
  torch::Tensor a = torch::ones({2, 2}).requires_grad_(), b = torch::ones({2, 2}).requires_grad_();
  Optimizer o1(tc, {{"w", a}}), o2(tc, {{"w", b}});
  a.mutable_grad() = torch::full({2, 2}, 0.3);
  o1.step(0.1);
  o2.load_state(o1.state(), o1.steps_taken());
  {
    torch::NoGradGuard g;
    b.copy_(a);
  }
  a.mutable_grad() = torch::full({2, 2}, -0.2);
  b.mutable_grad() = torch::full({2, 2}, -0.2);
  o1.step(0.1);
  o2.step(0.1);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_TRUE(no_weight_decay("blocks.0.attn.proj.bias", torch::zeros({3})));
  EXPECT_TRUE(no_weight_decay("pos_1LC", torch::zeros({1, 3, 3})));
  EXPECT_FALSE(no_weight_decay("blocks.0.attn.proj.weight", torch::zeros({3, 3})));
}

TEST(Schedule, WarmupThenCosine) {
  config::TrainConfig tc;
  tc.lr = 1.0;
  tc.warmup_steps = 4;
  tc.schedule = "cosine";
  EXPECT_DOUBLE_EQ(learning_rate(tc, 0, 104), 0.25);
  EXPECT_DOUBLE_EQ(learning_rate(tc, 3, 104), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(tc, 4, 104), 1.0);
  EXPECT_NEAR(learning_rate(tc, 54, 104), 0.5, 1e-12);
  EXPECT_NEAR(learning_rate(tc, 104, 104), 0.0, 1e-12);
  tc.schedule = "constant";
  EXPECT_DOUBLE_EQ(learning_rate(tc, 50, 104), 1.0);
}

// Invariant 6: every (example, view) unit of a lot is computed by exactly one rank, for any
// number of ranks and view groups; plain batches cover every example once per epoch.
TEST(WorkSplit, EveryUnitExactlyOnce) {
  const std::vector<int64_t> lot{2, 3, 5, 8, 13, 21, 34};
  for (int size : {1, 2, 3, 4, 6})
    for (int g : {1, 2, 3})
      for (int64_t k : {1, 2, 4}) {
        if (size % g) continue;
        std::map<std::pair<int64_t, int64_t>, int> seen;
        for (int r = 0; r < size; ++r)
          for (const auto& u : dp_units(lot, k, RankLayout{r, size, g})) seen[{u.example, u.view}]++;
        EXPECT_EQ(seen.size(), lot.size() * static_cast<size_t>(k));
        for (const auto& [unit, n] : seen) EXPECT_EQ(n, 1);
      }
  EXPECT_THROW(check_layout(RankLayout{0, 3, 2}), UsageError);
  std::multiset<int64_t> epoch;
  for (int64_t s = 0; s < steps_per_epoch(10, 4); ++s)
    for (int64_t e : plain_batch(9, s, 10, 4)) epoch.insert(e);
  EXPECT_EQ(epoch.size(), 10u);
  for (int64_t e = 0; e < 10; ++e) EXPECT_EQ(epoch.count(e), 1u);
  EXPECT_NE(plain_batch(9, 0, 10, 4), plain_batch(9, 3, 10, 4));  // the next epoch reshuffles
}

}  // namespace
}  // namespace vardp::train
