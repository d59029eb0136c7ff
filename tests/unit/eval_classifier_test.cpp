// The small CNN classifier / feature network of vardp eval: shapes and input mapping, exact
// save/load round trip, a short training run on a separable synthetic set, the crops, the
// learning-rate schedule and the class-accuracy bookkeeping.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstring>

#include "test_paths.hpp"
#include "vardp/data/transforms.hpp"
#include "vardp/eval/classifier.hpp"
#include "vardp/eval/classifier_train.hpp"
#include "vardp/eval/image_features.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/io/state_dict.hpp"
#include "vardp/util/error.hpp"

namespace vardp::eval {
namespace {

ClassifierConfig small_config() {
  ClassifierConfig c;
  c.image_size = 16;
  c.width = 8;
  c.stages = 2;
  c.pool_grid = 4;
  c.feature_dim = 24;
  c.num_classes = 4;
  return c;
}

// Class c: a class-specific colour in channel 0, stripes along x (odd c) or y (even c) in
// channel 1, a bright square in one quadrant (c) in channel 2, plus noise; stored at side s.
LabelledImages synthetic_set(int64_t n, int64_t s, int64_t classes, uint64_t seed) {
  torch::manual_seed(seed);
  LabelledImages set;
  set.labels = torch::arange(n, torch::kInt64).remainder(classes);
  torch::Tensor img = torch::randn({n, s, s, 3}) * 18.0 + 100.0;
  const auto coord = torch::arange(s, torch::kFloat32);
  const auto stripes = (torch::sin(coord * 1.6) * 60.0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = set.labels[i].item<int64_t>();
    img[i].select(2, 0).add_(35.0 * static_cast<double>(c));
    if (c % 2) {
      img[i].select(2, 1).add_(stripes.view({1, s}));
    } else {
      img[i].select(2, 1).add_(stripes.view({s, 1}));
    }
    const int64_t h = s / 2;
    img[i].slice(0, (c / 2) * h, (c / 2 + 1) * h).slice(1, (c % 2) * h, (c % 2 + 1) * h).select(2, 2).add_(90.0);
  }
  set.images = img.round().clamp(0, 255).to(torch::kUInt8).contiguous();
  return set;
}

TEST(EvalClassifier, ShapesAndInputMapping) {
  torch::manual_seed(0);
  SmallCnnClassifier net(small_config());
  const torch::Tensor images = torch::randint(0, 256, {5, 16, 16, 3}, torch::kUInt8);
  const ClassifierOutput out = net->classify(images, 2);
  EXPECT_EQ(out.features.sizes(), (torch::IntArrayRef{5, 24}));
  EXPECT_EQ(out.logits.sizes(), (torch::IntArrayRef{5, 4}));
  EXPECT_GE(out.features.min().item<float>(), 0.0f);  // after the ReLU

  // The training views' mapping (data::render_view): 0 -> -1, 255 -> 1, NCHW.
  torch::Tensor u = torch::zeros({1, 16, 16, 3}, torch::kUInt8);
  u[0][3][5][1] = 255;
  u[0][3][5][2] = 51;
  const torch::Tensor x = net->normalize(u);
  EXPECT_EQ(x.sizes(), (torch::IntArrayRef{1, 3, 16, 16}));
  EXPECT_FLOAT_EQ(x[0][0][0][0].item<float>(), -1.0f);
  EXPECT_FLOAT_EQ(x[0][1][3][5].item<float>(), 1.0f);
  std::vector<uint8_t> hwc(16 * 16 * 3);
  std::memcpy(hwc.data(), u.data_ptr<uint8_t>(), hwc.size());
  std::vector<float> chw(3 * 16 * 16);
  data::render_view(hwc.data(), 16, data::center_view(16, 16), 16, chw.data());
  EXPECT_TRUE(torch::equal(x[0], torch::from_blob(chw.data(), {3, 16, 16}, torch::kFloat32)));

  // Features do not depend on the batch they are in (eval-mode BatchNorm).
  const ClassifierOutput one = net->classify(images.slice(0, 3, 4), 1);
  EXPECT_TRUE(torch::allclose(one.features[0], out.features[3], 1e-5, 1e-6));

  EXPECT_THROW(net->classify(torch::zeros({1, 18, 18, 3}, torch::kUInt8)), Error);
  EXPECT_THROW(net->classify(torch::zeros({1, 16, 16, 3}, torch::kFloat32)), Error);
  ClassifierConfig bad = small_config();
  bad.image_size = 18;  // not a multiple of 2^stages
  EXPECT_THROW(SmallCnnClassifier{bad}, UsageError);
  bad = small_config();
  bad.pool_grid = 8;  // 16 / 4 = 4 < 8
  EXPECT_THROW(SmallCnnClassifier{bad}, UsageError);

  // The 32 x 32 default: 128 features, 10 classes, state-dict names of the architecture.
  SmallCnnClassifier def{ClassifierConfig{}};
  const ClassifierOutput d = def->classify(torch::zeros({2, 32, 32, 3}, torch::kUInt8));
  EXPECT_EQ(d.features.sizes(), (torch::IntArrayRef{2, 128}));
  EXPECT_EQ(d.logits.sizes(), (torch::IntArrayRef{2, 10}));
  const auto params = def->named_parameters(true);
  EXPECT_NE(params.find("blocks.0.conv.weight"), nullptr);
  EXPECT_NE(params.find("blocks.2.norm.weight"), nullptr);
  EXPECT_EQ(params["feature.weight"].sizes(), (torch::IntArrayRef{128, 64 * 4 * 4}));  // 16-32-64 channels
  EXPECT_NE(def->named_buffers(true).find("blocks.1.norm.running_var"), nullptr);
}

TEST(EvalClassifier, SaveLoadRoundTripIsExact) {
  test::ScratchDir dir;
  torch::manual_seed(1);
  ClassifierConfig c = small_config();
  c.convs_per_stage = 2;
  SmallCnnClassifier net(c);
  // A few training-mode passes so that the BatchNorm running statistics are not the defaults.
  net->train();
  {
    torch::NoGradGuard no_grad;
    for (int i = 0; i < 3; ++i) net->forward(net->normalize(torch::randint(0, 256, {8, 16, 16, 3}, torch::kUInt8)));
  }
  net->eval();
  ClassifierInfo info;
  info.config = c;
  info.class_names = {"a", "b", "c", "d"};
  info.original_class_ids = {5, 6, 7, 8};
  info.train_file = "train.h5";
  info.train_images_sha256 = "abc";
  info.source = "synthetic";
  info.test_accuracy = 0.75;
  info.test_examples = 12;
  const std::string path = dir / "c.h5";
  bool extra_called = false;
  save_classifier(path, *net, info, io::Provenance{}, [&](hid_t f) {
    extra_called = true;
    io::h5_write_attr(f, "epochs", int64_t{3});
  });
  EXPECT_TRUE(extra_called);

  LoadedClassifier back = load_classifier(path);
  EXPECT_EQ(back.info.config.convs_per_stage, 2);
  EXPECT_EQ(back.info.config.feature_dim, 24);
  EXPECT_EQ(back.info.class_names, info.class_names);
  EXPECT_EQ(back.info.original_class_ids, info.original_class_ids);
  EXPECT_EQ(back.info.source, "synthetic");
  EXPECT_DOUBLE_EQ(back.info.test_accuracy, 0.75);
  EXPECT_EQ(back.info.test_examples, 12);
  const torch::Tensor images = torch::randint(0, 256, {6, 16, 16, 3}, torch::kUInt8);
  const ClassifierOutput a = net->classify(images), b = back.net->classify(images);
  EXPECT_TRUE(torch::equal(a.features, b.features));
  EXPECT_TRUE(torch::equal(a.logits, b.logits));

  {
    auto f = io::H5File::open(path);
    EXPECT_EQ(io::h5_read_attr_string(f.id(), "format"), kClassifierFormat);
    EXPECT_EQ(io::h5_read_attr_int(f.id(), "epochs"), 3);
    // The weights are an ordinary state-dict group.
    const io::StateDict sd = io::read_state_dict_group(f.id(), "tensors", path);
    EXPECT_TRUE(sd.contains("blocks.3.norm.running_mean"));
    EXPECT_TRUE(sd.contains("logits.bias"));
  }
  // A state-dict file is not a classifier.
  io::StateDict sd;
  sd.insert("x", torch::zeros({2}));
  save_state_dict_h5(sd, dir / "sd.h5", io::Provenance{});
  EXPECT_THROW(load_classifier(dir / "sd.h5"), Error);
}

TEST(EvalClassifier, LearnsASeparableSetQuickly) {
  const auto t0 = std::chrono::steady_clock::now();
  torch::manual_seed(2);
  const LabelledImages train = synthetic_set(480, 18, 4, 3);
  const LabelledImages test = synthetic_set(160, 18, 4, 4);
  SmallCnnClassifier net(small_config());
  const double before = classifier_accuracy(*net, test);
  ClassifierTrainOptions o;
  o.epochs = 3;
  o.batch = 32;
  o.lr = 3e-3;
  o.seed = 5;
  o.log_every = 0;
  const ClassifierTrainResult r = train_classifier(*net, train, &test, o);
  ASSERT_EQ(r.history.size(), 3u);
  EXPECT_EQ(r.steps, 3 * 15);
  EXPECT_EQ(r.history.back().step, 45);
  EXPECT_GT(r.images_per_second, 0);
  EXPECT_LT(r.history.back().train_loss, r.history.front().train_loss);
  EXPECT_GE(r.test_accuracy, 0.95) << "accuracy before training " << before;
  EXPECT_DOUBLE_EQ(r.test_accuracy, classifier_accuracy(*net, test));
  EXPECT_FALSE(net->is_training());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 60.0);

  LabelledImages bad = test;
  bad.labels = bad.labels.clone();
  bad.labels[0] = 4;  // outside the 4 classes
  EXPECT_THROW(train_classifier(*net, bad, nullptr, o), UsageError);
  LabelledImages small = synthetic_set(8, 12, 4, 1);  // stored side 12 < input 16
  EXPECT_THROW(train_classifier(*net, small, nullptr, o), UsageError);
}

TEST(EvalClassifier, CenterCropMatchesTheEvaluationView) {
  const torch::Tensor images = torch::randint(0, 256, {2, 36, 36, 3}, torch::kUInt8);
  const torch::Tensor crop = center_crop(images, 32);
  const data::ViewParams p = data::center_view(36, 32);
  EXPECT_EQ(p.top, 2);
  EXPECT_TRUE(torch::equal(crop, images.slice(1, 2, 34).slice(2, 2, 34)));
  EXPECT_TRUE(crop.is_contiguous());
  // Odd margins: torchvision's round-half-to-even offset (data::center_crop_offset).
  const torch::Tensor odd = center_crop(torch::randint(0, 256, {1, 35, 35, 3}, torch::kUInt8), 32);
  EXPECT_EQ(odd.sizes(), (torch::IntArrayRef{1, 32, 32, 3}));
  EXPECT_TRUE(torch::equal(center_crop(images, 36), images));
}

TEST(EvalClassifier, LearningRateSchedule) {
  ClassifierTrainOptions o;
  o.lr = 1e-3;
  o.warmup_fraction = 0.1;
  o.final_lr_fraction = 0.01;
  EXPECT_NEAR(classifier_lr(o, 0, 100), 1e-4, 1e-15);                  // warm-up: step 1 of 10
  EXPECT_NEAR(classifier_lr(o, 9, 100), 1e-3, 1e-15);                  // end of warm-up
  EXPECT_NEAR(classifier_lr(o, 10, 100), 1e-3, 1e-15);                 // cosine starts at lr
  EXPECT_NEAR(classifier_lr(o, 55, 100), 0.5 * (1e-3 + 1e-5), 1e-12);  // half way
  EXPECT_NEAR(classifier_lr(o, 100, 100), 1e-5, 1e-15);
}

TEST(EvalClassifier, ClassAccuracyBookkeeping) {
  const ClassAccuracy a = class_accuracy({0, 1, 1, 2, 0, 2}, {0, 1, 2, 2, 2, 2}, 4);
  EXPECT_DOUBLE_EQ(a.accuracy, 4.0 / 6.0);
  EXPECT_EQ(a.counts, (std::vector<int64_t>{1, 1, 4, 0}));
  EXPECT_EQ(a.correct, (std::vector<int64_t>{1, 1, 2, 0}));
  EXPECT_DOUBLE_EQ(a.per_class[2], 0.5);
  EXPECT_TRUE(std::isnan(a.per_class[3]));
  EXPECT_THROW(class_accuracy({0}, {4}, 4), Error);
  EXPECT_THROW(class_accuracy({0, 1}, {0}, 4), Error);
}

}  // namespace
}  // namespace vardp::eval
