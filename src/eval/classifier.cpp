#include "vardp/eval/classifier.hpp"

#include <algorithm>

#include "vardp/io/atomic_file.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/io/module_state.hpp"
#include "vardp/io/state_dict.hpp"
#include "vardp/util/error.hpp"

namespace vardp::eval {

namespace {

constexpr const char* kInputRule = "uint8 RGB (N, R, R, 3); x = u / 255 * 2 - 1, float32 NCHW";

int64_t channels_of_stage(const ClassifierConfig& c, int64_t s) { return c.width << s; }

}  // namespace

void check_classifier_config(const ClassifierConfig& c) {
  const char* what = "classifier";
  if (c.image_size < 1) throw UsageError(str("image size must be positive, got ", c.image_size), what);
  if (c.width < 1 || c.feature_dim < 1 || c.convs_per_stage < 1 || c.pool_grid < 1)
    throw UsageError("width, feature_dim, convs_per_stage and pool_grid must be positive", what);
  if (c.stages < 1 || c.stages > 6) throw UsageError(str("stages must be in 1..6, got ", c.stages), what);
  if (c.num_classes < 2) throw UsageError(str("needs at least 2 classes, got ", c.num_classes), what);
  const int64_t pooled = c.image_size >> c.stages;
  if ((pooled << c.stages) != c.image_size || pooled < c.pool_grid) {
    throw UsageError(str("image size ", c.image_size, " must be a multiple of 2^stages = ", 1 << c.stages,
                         " and leave at least pool_grid = ", c.pool_grid, " pixels after pooling"),
                     what);
  }
}

ConvNormReluImpl::ConvNormReluImpl(int64_t in_channels, int64_t out_channels) {
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, out_channels, 3).padding(1).bias(false)));
  norm = register_module("norm", torch::nn::BatchNorm2d(out_channels));
}

torch::Tensor ConvNormReluImpl::forward(const torch::Tensor& x) { return norm(conv(x)).relu_(); }

SmallCnnClassifierImpl::SmallCnnClassifierImpl(const ClassifierConfig& config) : config_(config) {
  check_classifier_config(config_);
  blocks = register_module("blocks", torch::nn::ModuleList());
  int64_t in = 3;
  for (int64_t s = 0; s < config_.stages; ++s) {
    const int64_t out = channels_of_stage(config_, s);
    for (int64_t j = 0; j < config_.convs_per_stage; ++j) {
      blocks->push_back(ConvNormRelu(in, out));
      in = out;
    }
  }
  feature =
      register_module("feature", torch::nn::Linear(in * config_.pool_grid * config_.pool_grid, config_.feature_dim));
  logits = register_module("logits", torch::nn::Linear(config_.feature_dim, config_.num_classes));
}

torch::Tensor SmallCnnClassifierImpl::normalize(const torch::Tensor& images) const {
  const int64_t r = config_.image_size;
  if (images.dim() != 4 || images.size(1) != r || images.size(2) != r || images.size(3) != 3 ||
      images.scalar_type() != torch::kUInt8) {
    throw Error(str("classifier input must be uint8 (N, ", r, ", ", r, ", 3), got ", images.scalar_type(), " ",
                    images.sizes()));
  }
  const torch::Device device = feature->weight.device();
  // The same float operations as the training views (data/transforms.hpp): v = u / 255, v + v - 1.
  torch::Tensor v = images.to(device).permute({0, 3, 1, 2}).to(torch::kFloat32).div_(255.0f);
  return v.add(v).sub_(1.0f).contiguous();
}

ClassifierOutput SmallCnnClassifierImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = x;
  int64_t block = 0;
  for (int64_t s = 0; s < config_.stages; ++s) {
    for (int64_t j = 0; j < config_.convs_per_stage; ++j, ++block) h = blocks[block]->as<ConvNormRelu>()->forward(h);
    h = torch::max_pool2d(h, 2);
  }
  if (h.size(2) != config_.pool_grid) h = torch::adaptive_avg_pool2d(h, {config_.pool_grid, config_.pool_grid});
  ClassifierOutput out;
  out.features = torch::relu(feature(h.flatten(1)));
  out.logits = logits(out.features);
  return out;
}

ClassifierOutput SmallCnnClassifierImpl::classify(const torch::Tensor& images, int64_t batch) {
  VARDP_CHECK(batch > 0, "classify: batch must be positive");
  const bool was_training = is_training();
  eval();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> features, logit_rows;
  for (int64_t i = 0; i < images.size(0); i += batch) {
    const auto out = forward(normalize(images.slice(0, i, std::min(images.size(0), i + batch))));
    features.push_back(out.features.to(torch::kCPU));
    logit_rows.push_back(out.logits.to(torch::kCPU));
  }
  train(was_training);
  ClassifierOutput out;
  if (features.empty()) {
    out.features = torch::empty({0, config_.feature_dim});
    out.logits = torch::empty({0, config_.num_classes});
  } else {
    out.features = torch::cat(features);
    out.logits = torch::cat(logit_rows);
  }
  return out;
}

void save_classifier(const std::string& path, SmallCnnClassifierImpl& net, const ClassifierInfo& info,
                     const io::Provenance& provenance, const std::function<void(hid_t)>& extra) {
  const ClassifierConfig& c = net.config();
  const io::StateDict sd = io::state_dict_of(net);

  io::AtomicH5File out(path);
  const hid_t f = out.id();
  io::Provenance prov = provenance;
  prov.format = kClassifierFormat;
  prov.format_version = kClassifierFormatVersion;
  io::write_provenance(f, prov);
  io::h5_write_attr(f, "arch", kClassifierArch);
  io::h5_write_attr(f, "image_size", c.image_size);
  io::h5_write_attr(f, "in_channels", int64_t{3});
  io::h5_write_attr(f, "width", c.width);
  io::h5_write_attr(f, "stages", c.stages);
  io::h5_write_attr(f, "convs_per_stage", c.convs_per_stage);
  io::h5_write_attr(f, "pool_grid", c.pool_grid);
  io::h5_write_attr(f, "feature_dim", c.feature_dim);
  io::h5_write_attr(f, "num_classes", c.num_classes);
  io::h5_write_attr(f, "input_rule", kInputRule);
  io::h5_write_attr(f, "class_names", info.class_names);
  io::h5_write_attr(f, "original_class_ids", info.original_class_ids);
  io::h5_write_attr(f, "train_file", info.train_file);
  io::h5_write_attr(f, "train_images_sha256", info.train_images_sha256);
  io::h5_write_attr(f, "source", info.source);
  io::h5_write_attr(f, "test_accuracy", info.test_accuracy);
  io::h5_write_attr(f, "test_examples", info.test_examples);
  io::write_state_dict_group(f, "tensors", sd, path);
  if (extra) extra(f);
  out.commit();
}

LoadedClassifier load_classifier(const std::string& path) {
  auto file = io::H5File::open(path);
  const hid_t f = file.id();
  io::check_format(f, path, kClassifierFormat, kClassifierFormatVersion);
  const std::string arch = io::h5_read_attr_string(f, "arch");
  if (arch != kClassifierArch)
    throw Error(str("unknown classifier architecture '", arch, "' (this build knows ", kClassifierArch, ")"), path);
  if (io::h5_read_attr_int(f, "in_channels") != 3) throw Error("only 3-channel (RGB) classifiers exist", path);
  LoadedClassifier out;
  ClassifierInfo& info = out.info;
  ClassifierConfig& c = info.config;
  c.image_size = io::h5_read_attr_int(f, "image_size");
  c.width = io::h5_read_attr_int(f, "width");
  c.stages = io::h5_read_attr_int(f, "stages");
  c.convs_per_stage = io::h5_read_attr_int(f, "convs_per_stage");
  c.pool_grid = io::h5_read_attr_int(f, "pool_grid");
  c.feature_dim = io::h5_read_attr_int(f, "feature_dim");
  c.num_classes = io::h5_read_attr_int(f, "num_classes");
  try {
    check_classifier_config(c);
  } catch (const Error& e) {
    throw Error(e.message(), path);
  }
  info.class_names = io::h5_read_attr_strings(f, "class_names");
  info.original_class_ids = io::h5_read_attr_ints(f, "original_class_ids");
  info.train_file = io::h5_read_attr_string(f, "train_file");
  info.train_images_sha256 = io::h5_read_attr_string(f, "train_images_sha256");
  info.source = io::h5_read_attr_string(f, "source");
  info.test_accuracy = io::h5_read_attr_double(f, "test_accuracy");
  info.test_examples = io::h5_read_attr_int(f, "test_examples");
  const io::StateDict sd = io::read_state_dict_group(f, "tensors", path);

  out.net = SmallCnnClassifier(c);
  io::load_module_state(*out.net, sd, "classifier " + path);
  out.net->eval();
  return out;
}

}  // namespace vardp::eval
