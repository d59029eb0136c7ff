#include "vardp/eval/image_features.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "vardp/data/transforms.hpp"
#include "vardp/eval/inception.hpp"
#include "vardp/io/h5.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::eval {

namespace {

std::string shape_string(const std::vector<hsize_t>& dims) {
  std::string s;
  for (auto v : dims) s += (s.empty() ? "" : ", ") + std::to_string(v);
  return "(" + s + ")";
}

FeatureMatrix to_matrix(const torch::Tensor& rows) {
  const torch::Tensor t = rows.to(torch::kCPU).to(torch::kFloat32).contiguous();
  FeatureMatrix m(t.size(0), t.size(1));
  std::memcpy(m.data(), t.data_ptr<float>(), sizeof(float) * static_cast<size_t>(t.numel()));
  return m;
}

class InceptionNetwork : public FeatureNetwork {
 public:
  InceptionNetwork(const std::string& path, const torch::Device& device, int64_t batch)
      : net_(load_fid_inception(path)), batch_(batch) {
    net_->to(device);
  }
  std::string kind() const override { return "inception"; }
  int64_t input_size() const override { return 0; }  // resizes to 299 itself
  bool predicts() const override { return false; }
  FeatureBatch run(const torch::Tensor& views) override {
    InceptionFeatures f = net_->features(views, batch_);
    FeatureBatch b;
    b.pool = f.pool3;
    b.spatial = f.spatial;
    return b;
  }

 private:
  FidInceptionV3 net_;
  int64_t batch_;
};

}  // namespace

bool is_image_set(const std::string& path) {
  auto file = io::H5File::open(path);
  return io::h5_exists(file.id(), "/images") && !io::h5_exists(file.id(), "/features") &&
         !io::h5_exists(file.id(), "/mu");
}

ImageSetInfo read_image_set_info(const std::string& path) {
  auto file = io::H5File::open(path);
  const hid_t f = file.id();
  ImageSetInfo s;
  s.path = path;
  if (!io::h5_exists(f, "/images")) throw UsageError("no /images dataset", path);
  const auto dims = io::h5_dims(f, "/images");
  if (dims.size() != 4 || dims[0] == 0 || dims[1] != dims[2] || dims[3] != 3)
    throw UsageError(str("/images must be uint8 (N, H, H, 3) with N > 0, has shape ", shape_string(dims)), path);
  s.count = static_cast<int64_t>(dims[0]);
  s.side = static_cast<int64_t>(dims[1]);
  if (io::h5_has_attr(f, "format")) s.format = io::h5_read_attr_string(f, "format");
  s.view_size = io::h5_has_attr(f, "image_size") ? io::h5_read_attr_int(f, "image_size") : s.side;
  if (s.view_size < 1 || s.view_size > s.side)
    throw Error(str("image_size attribute ", s.view_size, " does not fit the stored side ", s.side), path);
  if (io::h5_exists(f, "/labels")) {
    const auto ld = io::h5_dims(f, "/labels");
    if (ld.size() != 1 || ld[0] != dims[0])
      throw Error(str("/labels must have shape (", s.count, "), has ", shape_string(ld)), path);
    s.has_labels = true;
  }
  if (io::h5_has_attr(f, "num_classes")) s.num_classes = io::h5_read_attr_int(f, "num_classes");
  if (io::h5_has_attr(f, "original_class_ids")) s.original_class_ids = io::h5_read_attr_ints(f, "original_class_ids");
  if (io::h5_has_attr(f, "images_sha256")) s.images_sha256 = io::h5_read_attr_string(f, "images_sha256");
  return s;
}

std::vector<int64_t> read_image_labels(const ImageSetInfo& set) {
  if (!set.has_labels) return {};
  auto file = io::H5File::open(set.path);
  return io::h5_read<int64_t>(file.id(), "/labels");
}

torch::Tensor center_crop(const torch::Tensor& images, int64_t crop) {
  VARDP_CHECK(images.dim() == 4 && images.size(1) == images.size(2) && images.size(3) == 3 &&
                  images.scalar_type() == torch::kUInt8,
              "center_crop: images must be uint8 (N, S, S, 3), got ", images.sizes());
  const int stored = static_cast<int>(images.size(1));
  if (crop == stored) return images;
  const data::ViewParams p = data::center_view(stored, static_cast<int>(crop));
  return images.slice(1, p.top, p.top + crop).slice(2, p.left, p.left + crop).contiguous();
}

ClassifierNetwork::ClassifierNetwork(const std::string& path, const torch::Device& device, int64_t batch)
    : loaded_(load_classifier(path)), batch_(batch) {
  loaded_.net->to(device);
}

FeatureBatch ClassifierNetwork::run(const torch::Tensor& views) {
  ClassifierOutput out = loaded_.net->classify(views, batch_);
  FeatureBatch b;
  b.pool = out.features;
  b.logits = out.logits;
  return b;
}

std::unique_ptr<FeatureNetwork> make_inception_network(const std::string& path, const torch::Device& device,
                                                       int64_t batch) {
  return std::make_unique<InceptionNetwork>(path, device, batch);
}

ImageFeatures compute_image_features(const ImageSetInfo& set, FeatureNetwork& net, int64_t read_rows) {
  VARDP_CHECK(read_rows > 0, "compute_image_features: read_rows must be positive");
  if (net.input_size() != 0 && net.input_size() != set.view_size) {
    throw UsageError(
        str("its images are evaluated as ", set.view_size, " x ", set.view_size, " views, but the ", net.kind(),
            " takes ", net.input_size(), " x ", net.input_size(), " (train the classifier at the run's image size)"),
        set.path);
  }
  auto file = io::H5File::open(set.path);
  const int64_t side = set.side;
  // Bounded memory for large images: at most 64 MiB of stored rows per read.
  read_rows = std::max<int64_t>(1, std::min(read_rows, (int64_t{64} << 20) / (side * side * 3)));
  std::vector<FeatureMatrix> pool, spatial;
  ImageFeatures out;
  int64_t last_log = 0;
  for (int64_t r0 = 0; r0 < set.count; r0 += read_rows) {
    const int64_t n = std::min(read_rows, set.count - r0);
    std::vector<uint8_t> rows =
        io::h5_read_rows<uint8_t>(file.id(), "/images", static_cast<hsize_t>(r0), static_cast<hsize_t>(n));
    VARDP_CHECK(static_cast<int64_t>(rows.size()) == n * side * side * 3, set.path, ": short read of /images");
    const torch::Tensor images = torch::from_blob(rows.data(), {n, side, side, 3}, torch::kUInt8);
    const FeatureBatch b = net.run(center_crop(images, set.view_size));
    VARDP_CHECK(b.pool.defined() && b.pool.size(0) == n, net.kind(), " returned no features for a batch");
    pool.push_back(to_matrix(b.pool));
    if (b.spatial.defined()) spatial.push_back(to_matrix(b.spatial));
    if (b.logits.defined()) {
      const torch::Tensor pred = b.logits.argmax(1).to(torch::kCPU).to(torch::kInt64).contiguous();
      const int64_t* p = pred.data_ptr<int64_t>();
      out.predictions.insert(out.predictions.end(), p, p + n);
    }
    if (r0 + n - last_log >= 10000 || r0 + n == set.count) {
      log::info("eval: ", net.kind(), " features of ", set.path, ": ", r0 + n, "/", set.count, " images");
      last_log = r0 + n;
    }
  }
  const auto stack = [&](const std::vector<FeatureMatrix>& parts) {
    FeatureMatrix m(set.count, parts.front().cols());
    int64_t row = 0;
    for (const auto& p : parts) {
      m.middleRows(row, p.rows()) = p;
      row += p.rows();
    }
    return m;
  };
  out.pool = stack(pool);
  if (!spatial.empty()) out.spatial = stack(spatial);
  if (!out.pool.allFinite()) throw Error(str(net.kind(), " features are not finite"), set.path);
  out.labels = read_image_labels(set);
  return out;
}

ClassAccuracy class_accuracy(const std::vector<int64_t>& predictions, const std::vector<int64_t>& labels,
                             int64_t num_classes) {
  VARDP_CHECK(predictions.size() == labels.size(), "class_accuracy: ", predictions.size(), " predictions for ",
              labels.size(), " labels");
  VARDP_CHECK(!labels.empty(), "class_accuracy: no samples");
  ClassAccuracy a;
  a.counts.assign(static_cast<size_t>(num_classes), 0);
  a.correct.assign(static_cast<size_t>(num_classes), 0);
  int64_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const int64_t y = labels[i];
    if (y < 0 || y >= num_classes)
      throw Error(str("label ", y, " is outside the classifier's classes 0..", num_classes - 1));
    ++a.counts[static_cast<size_t>(y)];
    if (predictions[i] == y) {
      ++a.correct[static_cast<size_t>(y)];
      ++correct;
    }
  }
  a.accuracy = static_cast<double>(correct) / static_cast<double>(labels.size());
  for (int64_t k = 0; k < num_classes; ++k) {
    const auto c = a.counts[static_cast<size_t>(k)];
    a.per_class.push_back(c ? static_cast<double>(a.correct[static_cast<size_t>(k)]) / static_cast<double>(c)
                            : std::numeric_limits<double>::quiet_NaN());
  }
  return a;
}

}  // namespace vardp::eval
