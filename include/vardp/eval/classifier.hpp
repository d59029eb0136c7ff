// A compact CNN classifier that doubles as the feature network of `vardp eval` for small images
// (the Fashion-MNIST demo at 32 x 32, where Inception features say little): its penultimate
// activations are the features behind FID / precision / recall, its argmax the predicted class
// behind the class accuracy of generated samples. File format: docs/formats/classifier.md.
//
// Architecture ("vardp-smallcnn-v1"), input uint8 (N, R, R, 3) RGB:
//   x = u/255 * 2 - 1 (float32 NCHW, VAR's [-1, 1] mapping of the training views)
//   stage s = 0..stages-1: convs_per_stage x [conv 3x3 (no bias) -> BatchNorm -> ReLU] with
//     width * 2^s channels, then 2x2 max pooling
//   adaptive average pooling to pool_grid x pool_grid, flatten
//   feature = ReLU(Linear(C * pool_grid^2 -> feature_dim))      <- the features
//   logits  = Linear(feature_dim -> num_classes)                <- argmax: the prediction
// In eval mode (always, outside training) BatchNorm uses its running statistics, so the features
// of an image do not depend on the batch it is in.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "vardp/io/provenance.hpp"

namespace vardp::eval {

inline constexpr const char* kClassifierFormat = "vardp.classifier";
inline constexpr int64_t kClassifierFormatVersion = 1;
inline constexpr const char* kClassifierArch = "vardp-smallcnn-v1";

struct ClassifierConfig {
  int64_t image_size = 32;  // R: input side (the model resolution of the dataset)
  int64_t width = 16;       // channels of stage 0; stage s has width * 2^s
  int64_t stages = 3;
  int64_t convs_per_stage = 1;
  int64_t pool_grid = 4;      // spatial grid kept before the fully connected layers
  int64_t feature_dim = 128;  // width of the feature layer
  int64_t num_classes = 10;
};

// Throws UsageError naming the field unless the architecture is buildable (R divisible by
// 2^stages and at least pool_grid after pooling, positive sizes).
void check_classifier_config(const ClassifierConfig& c);

// One conv 3x3 -> BatchNorm -> ReLU unit.
class ConvNormReluImpl : public torch::nn::Module {
 public:
  ConvNormReluImpl(int64_t in_channels, int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d norm{nullptr};
};
TORCH_MODULE(ConvNormRelu);

struct ClassifierOutput {
  torch::Tensor features;  // (N, feature_dim) float32, after the ReLU
  torch::Tensor logits;    // (N, num_classes) float32
};

class SmallCnnClassifierImpl : public torch::nn::Module {
 public:
  explicit SmallCnnClassifierImpl(const ClassifierConfig& config);
  const ClassifierConfig& config() const { return config_; }

  // uint8 (N, R, R, 3) -> float32 (N, 3, R, R) in [-1, 1], on the module's device.
  torch::Tensor normalize(const torch::Tensor& images_nhwc_u8) const;
  // Normalised input (N, 3, R, R) -> features and logits (autograd as the caller's mode).
  ClassifierOutput forward(const torch::Tensor& x);
  // Eval mode, no autograd, in batches of `batch`: features and logits on the CPU of uint8
  // (N, R, R, 3) images. Throws Error on a wrong shape or dtype.
  ClassifierOutput classify(const torch::Tensor& images_nhwc_u8, int64_t batch = 256);

  torch::nn::ModuleList blocks{nullptr};
  torch::nn::Linear feature{nullptr};
  torch::nn::Linear logits{nullptr};

 private:
  ClassifierConfig config_;
};
TORCH_MODULE(SmallCnnClassifier);

// What a classifier file says besides the weights.
struct ClassifierInfo {
  ClassifierConfig config;
  std::vector<std::string> class_names;     // name of class k (may be empty)
  std::vector<int64_t> original_class_ids;  // the source dataset's class of label k (may be empty)
  std::string train_file;                   // dataset it was trained on
  std::string train_images_sha256;          // that file's images_sha256 attribute
  std::string source;                       // that file's `source` (e.g. fashion_mnist)
  double test_accuracy = -1;                // < 0: not measured
  int64_t test_examples = 0;
};

struct LoadedClassifier {
  SmallCnnClassifier net{nullptr};
  ClassifierInfo info;
};

// Writes the classifier atomically (format vardp.classifier): the weights as the /tensors group
// of the state-dict layout (io/state_dict.hpp), the architecture and `info` as root attributes.
// `extra` is called with the open file before it is committed (training history, timings).
void save_classifier(const std::string& path, SmallCnnClassifierImpl& net, const ClassifierInfo& info,
                     const io::Provenance& provenance, const std::function<void(hid_t)>& extra = nullptr);

// Rebuilds the network from the file's attributes and loads its weights strictly (every key,
// every shape). The network is in eval mode on the CPU.
LoadedClassifier load_classifier(const std::string& path);

}  // namespace vardp::eval
