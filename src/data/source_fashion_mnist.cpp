// Fashion-MNIST (Xiao et al. 2017) from the IDX files of Debian's dataset-fashion-mnist package
// (/usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz; unpacked
// files are accepted too). 60,000 train / 10,000 test 28x28 grayscale images, 10 classes.
// Each image becomes RGB (gray replicated) on a 32x32 canvas, either zero-padded (2 px each
// side; the background is black) or Lanczos-resized, before the usual stored-size resize.
#include <filesystem>
#include <memory>

#include "vardp/data/idx.hpp"
#include "vardp/data/resize.hpp"
#include "vardp/data/sources.hpp"
#include "vardp/util/error.hpp"

namespace vardp::data {
namespace {

const char* const kFashionNames[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                       "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

std::string find_idx(const std::string& root, const std::string& stem) {
  for (const std::string& name : {stem + ".gz", stem}) {
    const std::string p = join_path(root, name);
    if (std::filesystem::exists(p)) return p;
  }
  throw Error(str("missing IDX file ", stem, "(.gz) (install Debian's dataset-fashion-mnist or ",
                  "pass --root)"),
              root);
}

struct Images {
  IdxArray array;
  std::string path;
};

}  // namespace

SourceDataset list_fashion_mnist(const std::string& root, const SourceOptions& options) {
  if (options.fmnist_fit != "pad" && options.fmnist_fit != "resize")
    throw UsageError("must be pad or resize", "--fmnist-fit");
  if (options.fmnist_size < 28) throw UsageError("must be at least 28", "--fmnist-size");
  SourceDataset ds;
  ds.format = "fashion_mnist";
  ds.root = root;
  for (const char* n : kFashionNames) ds.class_names.emplace_back(n);
  auto images = std::make_shared<std::vector<Images>>();
  const std::pair<const char*, const char*> splits[] = {{"train", "train"}, {"test", "t10k"}};
  for (const auto& [name, prefix] : splits) {
    const std::string img_path = find_idx(root, str(prefix, "-images-idx3-ubyte"));
    const std::string lbl_path = find_idx(root, str(prefix, "-labels-idx1-ubyte"));
    IdxArray img = read_idx_ubyte(img_path);
    const IdxArray lbl = read_idx_ubyte(lbl_path);
    if (img.dims.size() != 3 || img.dims[1] != 28 || img.dims[2] != 28)
      throw Error("expected N x 28 x 28 images", img_path);
    if (lbl.dims.size() != 1 || lbl.dims[0] != img.dims[0])
      throw Error(str("expected ", img.dims[0], " labels"), lbl_path);
    SourceSplit split{name, {}, {}};
    const size_t which = images->size();
    for (uint32_t i = 0; i < img.dims[0]; ++i) {
      const std::string item_name = str(img_path, "[", i, "]");
      if (lbl.data[i] >= 10) {
        split.bad.push_back({item_name, str("label ", int(lbl.data[i]), " out of range 0..9 in ",
                                            lbl_path)});
        continue;
      }
      split.items.push_back({item_name, int64_t(lbl.data[i]), int64_t(i), int32_t(which)});
    }
    images->push_back({std::move(img), img_path});
    ds.splits.push_back(std::move(split));
  }
  const int size = options.fmnist_size;
  const bool pad = options.fmnist_fit == "pad";
  ds.loader = [images, size, pad](const SourceItem& item) {
    const auto& src = (*images)[size_t(item.blob)].array;
    const size_t i = size_t(item.source_id);
    Image rgb(28, 28, 3);
    const uint8_t* g = src.data.data() + i * 28 * 28;
    for (size_t p = 0; p < 28 * 28; ++p)
      rgb.pixels[3 * p] = rgb.pixels[3 * p + 1] = rgb.pixels[3 * p + 2] = g[p];
    return pad ? pad_center(rgb, size, size, 0) : resize_lanczos(rgb, size, size);
  };
  ds.split_rule = str("train-*-ubyte -> train, t10k-*-ubyte -> test (60,000 / 10,000); 28x28 ",
                      pad ? "zero-padded" : "Lanczos-resized", " to ", size, "x", size);
  return ds;
}

}  // namespace vardp::data
