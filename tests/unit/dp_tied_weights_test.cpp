// Tied weights (invariant 1: an example's gradient is clipped jointly over all trainable
// tensors, each counted once): a tensor listed under two names, or reached by a per-example hook
// under another layer's name, is refused instead of normed wrongly.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "expect_error.hpp"
#include "vardp/dp/engine.hpp"
#include "vardp/model/linear.hpp"

namespace vardp::dp {
namespace {

// Two vardp Linear layers applied in sequence; `tie` makes b share a's weight.
struct TwoLayers : torch::nn::Module {
  model::Linear a{nullptr}, b{nullptr};
  explicit TwoLayers(bool tie) {
    a = register_module("a", model::Linear(4, 4, false));
    b = register_module("b", model::Linear(4, 4, false));
    if (tie) b->weight = a->weight;  // b's registered parameter stays its own; forward uses a's
  }
  torch::Tensor forward(const torch::Tensor& x) { return b->forward(a->forward(x)); }
};

TEST(TiedWeights, OneTensorUnderTwoNamesIsRefused) {
  torch::nn::Module m;
  torch::Tensor w = m.register_parameter("w", torch::zeros({3}));
  auto child = std::make_shared<torch::nn::Module>();
  child->register_parameter("w_alias", w);
  m.register_module("child", child);
  test::expect_error_containing([&] { TrainableSet::from_module(m); }, "are one tensor (tied weights)");
}

TEST(TiedWeights, AHookReachingATensorUnderAnotherNameIsRefused) {
  for (GradStrategy s : {GradStrategy::instantiate, GradStrategy::bk}) {
    auto net = std::make_shared<TwoLayers>(/*tie=*/true);
    TrainableSet set = TrainableSet::from_module(*net, [](const std::string& n) { return n == "a.weight"; });
    DpEngine engine(*net, set, EngineOptions{s, NormRule::cost, 1.0, 1});
    torch::Tensor x = torch::randn({3, 4});
    engine.begin_step({0, 1, 2});
    MicroBatch mb{{0, 1, 2}, [&](const torch::Tensor& rows) { return net->forward(x.index_select(0, rows)).sum(1); }};
    test::expect_error_containing([&] { engine.feed(mb); }, "tied weights");
  }
  // Untied, the same set trains: the check does not fire on ordinary layers.
  auto net = std::make_shared<TwoLayers>(/*tie=*/false);
  TrainableSet set = TrainableSet::from_module(*net, [](const std::string& n) { return n == "a.weight"; });
  DpEngine engine(*net, set, EngineOptions{GradStrategy::bk, NormRule::cost, 1.0, 1});
  torch::Tensor x = torch::randn({3, 4});
  engine.begin_step({0, 1, 2});
  MicroBatch mb{{0, 1, 2}, [&](const torch::Tensor& rows) { return net->forward(x.index_select(0, rows)).sum(1); }};
  EXPECT_NO_THROW(engine.feed(mb));
}

}  // namespace
}  // namespace vardp::dp
