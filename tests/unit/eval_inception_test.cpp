// FID Inception-v3: state-dict keys and shapes against pytorch-fid's published file
// (fixtures/official_shapes.json), layer-by-layer shapes, the evaluator's preprocessing, the pool3
// and spatial (sFID) outputs and their flatten order, batching, strict loading of a .pth written
// by torch.save exactly like the published one (tests/python/make_inception_state_dict.py), and
// errors that name the offending keys.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io_pth_test_support.hpp"
#include "test_paths.hpp"
#include "vardp/eval/inception.hpp"
#include "vardp/eval/tf_resize.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/io/module_state.hpp"
#include "vardp/io/provenance.hpp"
#include "vardp/io/state_dict.hpp"
#include "vardp/util/error.hpp"

namespace vardp::eval {
namespace {

using Shapes = std::vector<std::pair<std::string, std::vector<int64_t>>>;

// Conv weights N(0, 2/fan_in) and mildly perturbed BatchNorm statistics: activations keep their
// scale through the 94 conv layers (LibTorch's default init shrinks them layer after layer).
FidInceptionV3 plausible_model(uint64_t seed) {
  torch::manual_seed(seed);
  FidInceptionV3 m;
  torch::NoGradGuard no_grad;
  for (auto& p : m->named_parameters(true)) {
    const std::string& k = p.key();
    torch::Tensor& t = p.value();
    if (t.dim() == 4) {
      t.normal_(0.0, std::sqrt(2.0 / static_cast<double>(t.size(1) * t.size(2) * t.size(3))));
    } else if (k.size() > 9 && k.compare(k.size() - 9, 9, "bn.weight") == 0) {
      t.uniform_(0.8, 1.2);
    } else if (k.size() > 7 && k.compare(k.size() - 7, 7, "bn.bias") == 0) {
      t.normal_(0.0, 0.1);
    }
  }
  for (auto& b : m->named_buffers(true)) {
    const std::string& k = b.key();
    if (k.find("running_mean") != std::string::npos) b.value().normal_(0.0, 0.1);
    if (k.find("running_var") != std::string::npos) b.value().uniform_(0.5, 1.5);
  }
  return m;
}

torch::Tensor random_images(int64_t n, int64_t h, int64_t w, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {n, h, w, 3}).to(torch::kUInt8);
}

void expect_features_shape_and_finite(const InceptionFeatures& f, int64_t n) {
  ASSERT_EQ(f.pool3.sizes(), (std::vector<int64_t>{n, 2048}));
  ASSERT_EQ(f.spatial.sizes(), (std::vector<int64_t>{n, 2023}));
  EXPECT_EQ(f.pool3.scalar_type(), torch::kFloat32);
  EXPECT_EQ(f.spatial.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(f.pool3.device().is_cpu());
  EXPECT_TRUE(torch::isfinite(f.pool3).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(f.spatial).all().item<bool>());
  // Both come after ReLUs: non-negative, and not all zero for a working network.
  EXPECT_GE(f.pool3.min().item<float>(), 0.f);
  EXPECT_GE(f.spatial.min().item<float>(), 0.f);
  EXPECT_GT(f.pool3.max().item<float>(), 0.f);
  EXPECT_GT(f.spatial.max().item<float>(), 0.f);
}

TEST(EvalInception, StateDictKeysAndShapesArePytorchFids) {
  std::ifstream in(test::fixture("official_shapes.json"));
  ASSERT_TRUE(in) << test::fixture("official_shapes.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  std::map<std::string, std::pair<std::vector<int64_t>, std::string>> want;
  for (const auto& e : j.at("fid_inception_v3"))
    want[e.at(0).get<std::string>()] = {e.at(1).get<std::vector<int64_t>>(), e.at(2).get<std::string>()};
  ASSERT_EQ(want.size(), 566u);

  FidInceptionV3 m;
  const Shapes got = io::module_shapes(*m);
  ASSERT_EQ(got.size(), 566u);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& p : m->named_parameters(true)) tensors[p.key()] = p.value();
  for (const auto& b : m->named_buffers(true)) tensors[b.key()] = b.value();
  for (const auto& [key, shape] : got) {
    ASSERT_TRUE(want.count(key)) << "not in pytorch-fid's state dict: " << key;
    EXPECT_EQ(shape, want[key].first) << key;
    const bool is_int = want[key].second == "int64";
    EXPECT_EQ(tensors.at(key).scalar_type(), is_int ? torch::kInt64 : torch::kFloat32) << key;
  }
  int64_t params = 0;
  for (const auto& p : m->parameters()) params += p.numel();
  EXPECT_EQ(params, j.at("fid_inception_v3_params").get<int64_t>());  // 23,850,960
}

TEST(EvalInception, LayerByLayerShapes) {
  FidInceptionV3 m = plausible_model(1);
  torch::NoGradGuard no_grad;
  torch::manual_seed(2);
  torch::Tensor x = torch::rand({1, 3, 299, 299}) * 2 - 1;
  const auto expect = [&](const char* what, int64_t c, int64_t side) {
    EXPECT_EQ(x.sizes(), (std::vector<int64_t>{1, c, side, side})) << what;
  };
  x = m->Conv2d_1a_3x3(x);
  expect("Conv2d_1a_3x3", 32, 149);
  x = m->Conv2d_2a_3x3(x);
  expect("Conv2d_2a_3x3", 32, 147);
  x = m->Conv2d_2b_3x3(x);
  expect("Conv2d_2b_3x3", 64, 147);
  x = torch::max_pool2d(x, {3, 3}, {2, 2});
  x = m->Conv2d_3b_1x1(x);
  expect("Conv2d_3b_1x1", 80, 73);
  x = m->Conv2d_4a_3x3(x);
  expect("Conv2d_4a_3x3", 192, 71);
  x = torch::max_pool2d(x, {3, 3}, {2, 2});
  x = m->Mixed_5b(x);
  expect("Mixed_5b", 256, 35);
  x = m->Mixed_5c(x);
  expect("Mixed_5c", 288, 35);
  x = m->Mixed_5d(x);
  expect("Mixed_5d", 288, 35);
  x = m->Mixed_6a(x);
  expect("Mixed_6a", 768, 17);
  x = m->Mixed_6b(x);
  expect("Mixed_6b", 768, 17);
  x = m->Mixed_6c(x);
  expect("Mixed_6c", 768, 17);
  auto [d, d_conv] = m->Mixed_6d->forward_with_branch1x1(x);
  x = d;
  expect("Mixed_6d", 768, 17);
  EXPECT_EQ(d_conv.sizes(), (std::vector<int64_t>{1, 192, 17, 17}));
  x = m->Mixed_6e(x);
  expect("Mixed_6e", 768, 17);
  x = m->Mixed_7a(x);
  expect("Mixed_7a", 1280, 8);
  x = m->Mixed_7b(x);
  expect("Mixed_7b", 2048, 8);
  x = m->Mixed_7c(x);
  expect("Mixed_7c", 2048, 8);
}

// Makes `b` pass input channel 0 to every output channel unchanged (BatchNorm the identity).
void pass_channel0(BasicConv2d& b) {
  torch::NoGradGuard no_grad;
  b->conv->weight.zero_();
  b->conv->weight.narrow(1, 0, 1).fill_(1.0);
  b->bn->weight.fill_(1.0);
  b->bn->bias.zero_();
  b->bn->running_mean.zero_();
  b->bn->running_var.fill_(1.0 - 0.001);  // var + eps = 1
}

TEST(EvalInception, PoolBranchesPoolAsTensorFlow) {
  // The pool branch is the last block of channels. On a constant map an average that ignores
  // the padding stays 1 at the corners (counting it would give 4/9); Mixed_7c max-pools.
  torch::NoGradGuard no_grad;
  const torch::Tensor ones = torch::ones({1, 4, 6, 6});
  FidInceptionA a(4, 1);
  pass_channel0(a->branch_pool);
  a->eval();
  const torch::Tensor ya = a(ones);
  ASSERT_EQ(ya.size(1), 64 + 64 + 96 + 1);
  EXPECT_FLOAT_EQ(ya[0][224][0][0].item<float>(), 1.f);
  EXPECT_FLOAT_EQ(ya[0][224][0][3].item<float>(), 1.f);

  FidInceptionC c(4, 8);
  pass_channel0(c->branch_pool);
  c->eval();
  const torch::Tensor yc = c(ones);
  ASSERT_EQ(yc.size(1), 4 * 192);
  EXPECT_FLOAT_EQ(yc[0][767][0][0].item<float>(), 1.f);
  EXPECT_FLOAT_EQ(yc[0][767][5][2].item<float>(), 1.f);

  // A single peak of 10 at (0, 0) on a map of ones: max pooling spreads it to the 3x3
  // neighbourhood, the padding-excluding average gives (10 + 3) / 4 at the corner.
  torch::Tensor peak = torch::ones({1, 4, 6, 6});
  peak[0][0][0][0] = 10.f;
  FidInceptionE e_avg(4, InceptionEPool::average), e_max(4, InceptionEPool::max);
  for (FidInceptionE* e : {&e_avg, &e_max}) {
    pass_channel0((*e)->branch_pool);
    (*e)->eval();
  }
  const torch::Tensor y_avg = e_avg(peak), y_max = e_max(peak);
  ASSERT_EQ(y_max.size(1), 320 + 768 + 768 + 192);
  EXPECT_FLOAT_EQ(y_avg[0][2047][0][0].item<float>(), 13.f / 4.f);
  EXPECT_FLOAT_EQ(y_avg[0][2047][1][1].item<float>(), 18.f / 9.f);
  EXPECT_FLOAT_EQ(y_max[0][2047][0][0].item<float>(), 10.f);
  EXPECT_FLOAT_EQ(y_max[0][2047][1][1].item<float>(), 10.f);
  EXPECT_FLOAT_EQ(y_max[0][2047][2][2].item<float>(), 1.f);

  // Mixed_7b averages, Mixed_7c max-pools, as pytorch-fid's FIDInceptionE_1 / _2.
  FidInceptionV3 m;
  for (FidInceptionE* e : {&m->Mixed_7b, &m->Mixed_7c}) {
    pass_channel0((*e)->branch_pool);
  }
  const torch::Tensor p7b = m->Mixed_7b(torch::cat({peak, torch::ones({1, 1276, 6, 6})}, 1));
  const torch::Tensor p7c = m->Mixed_7c(torch::cat({peak, torch::ones({1, 2044, 6, 6})}, 1));
  EXPECT_FLOAT_EQ(p7b[0][2047][1][1].item<float>(), 18.f / 9.f);
  EXPECT_FLOAT_EQ(p7c[0][2047][1][1].item<float>(), 10.f);
}

TEST(EvalInception, InPlaceInferenceMatchesBatchNormModule) {
  // Without gradients, BasicConv2d applies BatchNorm and ReLU in place on the conv output; it must
  // agree with LibTorch's BatchNorm2d module in eval mode (the path taken with gradients on).
  FidInceptionV3 m = plausible_model(14);
  torch::manual_seed(15);
  const torch::Tensor x = torch::randn({2, 288, 35, 35});
  BasicConv2d& layer = m->Mixed_6a->branch3x3;
  const torch::Tensor with_grad = layer(x);  // parameters require grad: the module path
  ASSERT_TRUE(with_grad.requires_grad());
  torch::NoGradGuard no_grad;
  const torch::Tensor in_place = layer(x);
  EXPECT_TRUE(torch::allclose(in_place, with_grad.detach(), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(in_place, torch::relu(layer->bn(layer->conv(x))), 1e-5, 1e-6));
  EXPECT_GT((in_place > 0).sum().item<int64_t>(), in_place.numel() / 10);
}

TEST(EvalInception, PoolAndSpatialAreTheDocumentedTensors) {
  // pool3 = mean of Mixed_7c over positions; spatial = Mixed_6d.branch1x1 (mixed_6/conv),
  // channels 0..6, flattened NHWC: index (h * 17 + w) * 7 + c.
  FidInceptionV3 m = plausible_model(3);
  torch::NoGradGuard no_grad;
  torch::manual_seed(4);
  const torch::Tensor in = torch::rand({2, 3, 299, 299}) * 2 - 1;
  const InceptionFeatures f = m->forward(in);

  torch::Tensor x = m->Conv2d_2b_3x3(m->Conv2d_2a_3x3(m->Conv2d_1a_3x3(in)));
  x = torch::max_pool2d(x, {3, 3}, {2, 2});
  x = torch::max_pool2d(m->Conv2d_4a_3x3(m->Conv2d_3b_1x1(x)), {3, 3}, {2, 2});
  x = m->Mixed_6c(m->Mixed_6b(m->Mixed_6a(m->Mixed_5d(m->Mixed_5c(m->Mixed_5b(x))))));
  const torch::Tensor conv = m->Mixed_6d->branch1x1(x);
  x = m->Mixed_7c(m->Mixed_7b(m->Mixed_7a(m->Mixed_6e(m->Mixed_6d(x)))));
  EXPECT_TRUE(torch::allclose(f.pool3, x.mean({2, 3}), 1e-5, 1e-6));

  ASSERT_EQ(f.spatial.sizes(), (std::vector<int64_t>{2, 2023}));
  const auto s = f.spatial.accessor<float, 2>();
  const auto c4 = conv.accessor<float, 4>();
  int checked = 0;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t h = 0; h < 17; h += 4)
      for (int64_t w = 0; w < 17; w += 3)
        for (int64_t c = 0; c < 7; ++c, ++checked)
          EXPECT_NEAR(s[n][(h * 17 + w) * 7 + c], c4[n][c][h][w], 1e-5f) << n << " " << h << " " << w << " " << c;
  EXPECT_GT(checked, 300);
  EXPECT_GT(conv.narrow(1, 0, 7).max().item<float>(), 0.f);  // the check compares something
}

TEST(EvalInception, PreprocessingIsTheEvaluators) {
  // 299x299: no resize; NHWC -> NCHW and (x - 128) / 128, exactly.
  const torch::Tensor img = random_images(2, 299, 299, 5);
  const torch::Tensor p = preprocess_inception(img);
  ASSERT_EQ(p.sizes(), (std::vector<int64_t>{2, 3, 299, 299}));
  EXPECT_EQ(p.scalar_type(), torch::kFloat32);
  const torch::Tensor want = (img.to(torch::kFloat32).permute({0, 3, 1, 2}) - 128) * 0.0078125;
  EXPECT_TRUE(torch::equal(p, want));
  EXPECT_FLOAT_EQ(p[1][2][10][20].item<float>(), (img[1][10][20][2].item<uint8_t>() - 128.f) / 128.f);

  // 2x2 -> 299: TF1 sampling without half-pixel offset. Row/column i samples i * 2/299, so 0
  // is pixel 0 exactly, 150..298 are pixel 1 exactly (clamped), 75 is halfway (75*2/299 ~ .502).
  const torch::Tensor tiny =
      torch::tensor({0, 40, 200, 255, 0, 0, 100, 10, 90, 60, 60, 60}, torch::kUInt8).view({1, 2, 2, 3});
  const torch::Tensor q = preprocess_inception(tiny);
  ASSERT_EQ(q.sizes(), (std::vector<int64_t>{1, 3, 299, 299}));
  const auto px = [&](int64_t h, int64_t w, int64_t c) { return (tiny[0][h][w][c].item<uint8_t>() - 128.f) / 128.f; };
  for (int64_t c = 0; c < 3; ++c) {
    EXPECT_FLOAT_EQ(q[0][c][0][0].item<float>(), px(0, 0, c));
    EXPECT_FLOAT_EQ(q[0][c][298][298].item<float>(), px(1, 1, c));
    EXPECT_FLOAT_EQ(q[0][c][150][0].item<float>(), px(1, 0, c));
    EXPECT_FLOAT_EQ(q[0][c][0][150].item<float>(), px(0, 1, c));
  }
  EXPECT_TRUE(
      torch::equal(q, (tf1_resize_bilinear(tiny.to(torch::kFloat32).permute({0, 3, 1, 2}), 299, 299) - 128) / 128));
  test::expect_error([] { preprocess_inception(torch::zeros({1, 8, 8, 3})); }, {"uint8"});
  test::expect_error([] { preprocess_inception(torch::zeros({1, 3, 8, 8}, torch::kUInt8)); }, {"(N, H, W, 3)"});
}

TEST(EvalInception, FeaturesOf299AndResizedBatches) {
  FidInceptionV3 m = plausible_model(6);
  const torch::Tensor big = random_images(3, 299, 299, 7);
  const InceptionFeatures f2 = m->features(big, /*batch=*/2);  // batches of 2 and 1
  expect_features_shape_and_finite(f2, 3);
  const InceptionFeatures f3 = m->features(big, /*batch=*/3);
  EXPECT_TRUE(torch::allclose(f2.pool3, f3.pool3, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(f2.spatial, f3.spatial, 1e-4, 1e-5));
  // Different images give different features.
  EXPECT_GT((f3.pool3[0] - f3.pool3[1]).abs().max().item<float>(), 1e-3f);

  const torch::Tensor small = random_images(2, 32, 32, 8);
  const InceptionFeatures fs = m->features(small, 50);
  expect_features_shape_and_finite(fs, 2);
  const InceptionFeatures direct = m->forward(preprocess_inception(small));
  EXPECT_TRUE(torch::allclose(fs.pool3, direct.pool3, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(fs.spatial, direct.spatial, 1e-5, 1e-6));

  const InceptionFeatures none = m->features(torch::zeros({0, 64, 64, 3}, torch::kUInt8));
  EXPECT_EQ(none.pool3.sizes(), (std::vector<int64_t>{0, 2048}));
  EXPECT_EQ(none.spatial.sizes(), (std::vector<int64_t>{0, 2023}));
}

TEST(EvalInception, FeaturesRunInEvalModeAndRejectBadArguments) {
  FidInceptionV3 m = plausible_model(9);
  const torch::Tensor img = random_images(1, 40, 40, 10);
  const InceptionFeatures before = m->features(img);
  m->train();
  test::expect_error([&] { m->forward(preprocess_inception(img)); }, {"training mode"});
  // features() switches back to eval: same values, running statistics untouched.
  const InceptionFeatures after = m->features(img);
  EXPECT_FALSE(m->is_training());
  EXPECT_TRUE(torch::equal(before.pool3, after.pool3));
  test::expect_error([&] { m->features(img, 0); }, {"batch"});
  test::expect_error([&] { m->features(torch::zeros({1, 40, 40, 3})); }, {"uint8"});
  test::expect_error([&] { m->features(torch::zeros({1, 3, 40, 40}, torch::kUInt8)); }, {"(N, H, W, 3)"});
  test::expect_error([&] { m->forward(torch::zeros({1, 3, 64, 64})); }, {"(N, 3, 299, 299)"});
}

io::StateDict without(const io::StateDict& sd, const std::string& drop) {
  io::StateDict out;
  for (const auto& k : sd.keys())
    if (k != drop) out.insert(k, sd.at(k));
  return out;
}

TEST(EvalInception, WrongKeysShapesAndDtypesAreNamed) {
  FidInceptionV3 src = plausible_model(12);
  const io::StateDict good = io::state_dict_of(*src);
  FidInceptionV3 m;
  const torch::Tensor before = m->Conv2d_1a_3x3->conv->weight.clone();

  test::expect_error([&] { load_fid_inception_state(*m, without(good, "Mixed_6d.branch1x1.bn.running_var"), "W"); },
                     {"W:", "missing", "Mixed_6d.branch1x1.bn.running_var"}, "missing");
  io::StateDict extra = good;
  extra.insert("AuxLogits.fc.weight", torch::zeros({1000, 768}));
  test::expect_error([&] { load_fid_inception_state(*m, extra, "W"); }, {"unexpected", "AuxLogits.fc.weight"},
                     "unexpected");
  io::StateDict torchvision_fc = good;
  torchvision_fc.insert("fc.weight", torch::zeros({1000, 2048}));
  test::expect_error([&] { load_fid_inception_state(*m, torchvision_fc, "W"); },
                     {"wrong shape", "fc.weight", "[1008, 2048]", "[1000, 2048]"}, "shape");
  io::StateDict int_weight = good;
  int_weight.insert("Mixed_7c.branch_pool.conv.weight", torch::zeros({192, 2048, 1, 1}, torch::kInt64));
  test::expect_error([&] { load_fid_inception_state(*m, int_weight, "W"); },
                     {"Mixed_7c.branch_pool.conv.weight", "dtype"}, "dtype");
  EXPECT_TRUE(torch::equal(m->Conv2d_1a_3x3->conv->weight, before)) << "a failed load modified the module";

  // A good dict loads, values and all.
  load_fid_inception_state(*m, good, "W");
  EXPECT_TRUE(torch::equal(m->Mixed_6d->branch1x1->conv->weight, src->Mixed_6d->branch1x1->conv->weight));
  EXPECT_TRUE(
      torch::equal(m->Mixed_7b->branch3x3dbl_2->bn->running_var, src->Mixed_7b->branch3x3dbl_2->bn->running_var));

  // Through a file: the error names the file and the key.
  test::ScratchDir dir;
  const std::string bad = dir / "bad_inception.h5";
  io::Provenance prov;
  io::save_state_dict_h5(without(good, "fc.bias"), bad, prov);
  test::expect_error([&] { load_fid_inception(bad); }, {bad, "fc.bias", "missing"}, "file");
}

TEST(EvalInception, LoadsATorchSavedPytorchFidStateDict) {
  test::ScratchDir dir;
  const std::string pth = dir / "pt_inception-standin.pth";
  const std::string check = dir / "check.h5";
  ASSERT_TRUE(test::run_python("make_inception_state_dict.py", {pth, check}));
  FidInceptionV3 m = load_fid_inception(pth);
  EXPECT_FALSE(m->is_training());

  std::map<std::string, torch::Tensor> tensors;
  for (const auto& p : m->named_parameters(true)) tensors[p.key()] = p.value();
  for (const auto& b : m->named_buffers(true)) tensors[b.key()] = b.value();
  io::H5File f = io::H5File::open(check);
  const auto keys = io::h5_list(f.id());
  ASSERT_EQ(keys.size(), 8u);
  for (const auto& key : keys) {
    ASSERT_TRUE(tensors.count(key)) << key;
    const torch::Tensor& t = tensors.at(key);
    std::vector<hsize_t> dims;
    if (t.scalar_type() == torch::kInt64) {
      auto v = io::h5_read<int64_t>(f.id(), key, &dims);
      ASSERT_EQ(v.size(), 1u) << key;
      EXPECT_EQ(t.item<int64_t>(), v[0]) << key;
      EXPECT_GT(v[0], 0) << key;  // the key's index in the file: not a default 0
    } else {
      auto v = io::h5_read<float>(f.id(), key, &dims);
      ASSERT_EQ(static_cast<int64_t>(v.size()), t.numel()) << key;
      const torch::Tensor want = torch::from_blob(v.data(), t.sizes(), torch::kFloat32);
      EXPECT_TRUE(torch::equal(t, want)) << key;
    }
  }

  // The same tensors in vardp's HDF5 state-dict format load to the same module.
  const std::string h5 = dir / "inception.h5";
  io::save_state_dict_h5(io::load_state_dict(pth), h5, io::Provenance{});
  FidInceptionV3 m2 = load_fid_inception(h5);
  EXPECT_TRUE(torch::equal(m2->fc->weight, m->fc->weight));
  EXPECT_TRUE(torch::equal(m2->Mixed_5c->branch5x5_2->bn->running_mean, m->Mixed_5c->branch5x5_2->bn->running_mean));

  // The loaded (random but plausibly scaled) network produces finite features.
  expect_features_shape_and_finite(m->features(random_images(2, 48, 48, 13)), 2);
}

}  // namespace
}  // namespace vardp::eval
