// Images -> features for `vardp eval`. An image set is any HDF5 file with /images uint8
// (N, H, H, 3) RGB and optionally /labels int64 (N): a dataset file (vardp prepare, stored side
// S = round(1.125 R), attribute image_size = R), a samples file (vardp sample; its /images may be
// a virtual dataset over rank shards) or a file written by h5py. Each image is seen through its
// evaluation view, the centre R x R crop (torchvision CenterCrop offsets, as the trainer's test
// views: data::center_view), where R is the file's `image_size` attribute, else H. A feature
// network maps the views to pool features (FID, precision/recall), optionally spatial features
// (sFID; Inception) and predicted classes (the classifier: class accuracy).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vardp/eval/classifier.hpp"
#include "vardp/eval/stats.hpp"

namespace vardp::eval {

struct ImageSetInfo {
  std::string path;
  std::string format;     // the file's `format` attribute ("" when absent)
  int64_t count = 0;      // N
  int64_t side = 0;       // stored side H (= W)
  int64_t view_size = 0;  // R: side of the evaluation view
  bool has_labels = false;
  int64_t num_classes = 0;                  // `num_classes` attribute (0 when absent)
  std::vector<int64_t> original_class_ids;  // `original_class_ids` attribute (empty when absent)
  std::string images_sha256;                // `images_sha256` attribute of dataset files ("" when absent)
};

// True when the file has /images and neither /features nor /mu (features win when both exist).
bool is_image_set(const std::string& path);
// Checks /images is (N, H, H, 3) with N > 0 and R <= H, and /labels (N) if present.
ImageSetInfo read_image_set_info(const std::string& path);
std::vector<int64_t> read_image_labels(const ImageSetInfo& set);

// uint8 (N, S, S, 3) -> (N, R, R, 3): the centre crop with data::center_view's offsets.
torch::Tensor center_crop(const torch::Tensor& images_nhwc_u8, int64_t crop);

// One batch of network outputs (CPU float32 rows; undefined tensors when the network has none).
struct FeatureBatch {
  torch::Tensor pool;     // (n, d)
  torch::Tensor spatial;  // (n, d_s)
  torch::Tensor logits;   // (n, classes)
};

class FeatureNetwork {
 public:
  virtual ~FeatureNetwork() = default;
  virtual std::string kind() const = 0;  // "classifier" or "inception"
  // Side of the views it takes; 0: any (the network resizes them itself).
  virtual int64_t input_size() const = 0;
  virtual bool predicts() const = 0;  // gives logits
  virtual FeatureBatch run(const torch::Tensor& views_nhwc_u8) = 0;
};

// The vardp-smallcnn classifier (classifier.hpp): pool = its feature layer, logits.
class ClassifierNetwork : public FeatureNetwork {
 public:
  ClassifierNetwork(const std::string& path, const torch::Device& device, int64_t batch = 256);
  std::string kind() const override { return "classifier"; }
  int64_t input_size() const override { return loaded_.info.config.image_size; }
  bool predicts() const override { return true; }
  FeatureBatch run(const torch::Tensor& views) override;
  const ClassifierInfo& info() const { return loaded_.info; }

 private:
  LoadedClassifier loaded_;
  int64_t batch_;
};

// pytorch-fid's Inception-v3 (pool3, 2048) with ADM's spatial features (first 7 channels of
// mixed_6/conv, 2023) for sFID. Throws UsageError if this build has no Inception network.
std::unique_ptr<FeatureNetwork> make_inception_network(const std::string& path, const torch::Device& device,
                                                       int64_t batch = 50);

struct ImageFeatures {
  FeatureMatrix pool;                    // (N, d)
  std::optional<FeatureMatrix> spatial;  // (N, d_s) when the network has spatial features
  std::vector<int64_t> predictions;      // argmax of the logits (networks that predict)
  std::vector<int64_t> labels;           // /labels of the set (when present)
};

// Runs every evaluation view of the set through `net`, reading `read_rows` images at a time.
// Throws UsageError when the set's view size differs from the network's input size.
ImageFeatures compute_image_features(const ImageSetInfo& set, FeatureNetwork& net, int64_t read_rows = 1024);

struct ClassAccuracy {
  double accuracy = 0;            // share of samples predicted as their label
  std::vector<double> per_class;  // per label k (NaN for a class without samples)
  std::vector<int64_t> counts;    // samples per label
  std::vector<int64_t> correct;   // correctly predicted samples per label
};
// Labels must lie in [0, num_classes) (throws Error otherwise); both vectors equally long.
ClassAccuracy class_accuracy(const std::vector<int64_t>& predictions, const std::vector<int64_t>& labels,
                             int64_t num_classes);

}  // namespace vardp::eval
