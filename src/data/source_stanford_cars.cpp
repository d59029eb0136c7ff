// Stanford Cars (Krause et al. 2013) as torchvision lays it out: cars_train/, cars_test/,
// devkit/cars_meta.mat (`class_names`, 1 x 196 cell), devkit/cars_train_annos.mat and
// cars_test_annos_withlabels.mat (struct array `annotations` with fields bbox_x1..bbox_y2,
// class 1..196, fname). The labelled test annotations are looked for in the root and in devkit/.
// Official split 8,144 / 8,041; whole images are used (bounding boxes are ignored).
#include <filesystem>

#include "vardp/data/mat_file.hpp"
#include "vardp/data/sources.hpp"
#include "vardp/util/error.hpp"

namespace vardp::data {
namespace {

SourceSplit read_annotations(const std::string& name, const std::string& annos_file,
                             const std::string& image_dir, int64_t num_classes) {
  MatFile m(annos_file);
  const std::vector<std::string> fnames = m.struct_string("annotations", "fname");
  const std::vector<double> classes = m.struct_numeric("annotations", "class");
  if (fnames.size() != classes.size())
    throw Error("fname and class fields differ in length", annos_file);
  SourceSplit split{name, {}, {}};
  for (size_t i = 0; i < fnames.size(); ++i) {
    const std::string path = join_path(image_dir, fnames[i]);
    const double c = classes[i];
    if (c != double(int64_t(c)) || c < 1 || c > double(num_classes)) {
      split.bad.push_back({path, str("label ", c, " out of range 1..", num_classes, " in ",
                                     annos_file, " (annotation ", i + 1, ")")});
      continue;
    }
    split.items.push_back({path, int64_t(c) - 1, int64_t(i) + 1});
  }
  return split;
}

}  // namespace

SourceDataset list_stanford_cars(const std::string& root) {
  const std::string devkit = join_path(root, "devkit");
  SourceDataset ds;
  ds.format = "stanford_cars";
  ds.root = root;
  ds.class_names = MatFile(join_path(devkit, "cars_meta.mat")).strings("class_names");
  const int64_t k = int64_t(ds.class_names.size());
  std::string test_annos = join_path(root, "cars_test_annos_withlabels.mat");
  if (!std::filesystem::exists(test_annos)) {
    const std::string alt = join_path(devkit, "cars_test_annos_withlabels.mat");
    if (std::filesystem::exists(alt)) test_annos = alt;
  }
  ds.splits.push_back(read_annotations("train", join_path(devkit, "cars_train_annos.mat"),
                                       join_path(root, "cars_train"), k));
  ds.splits.push_back(read_annotations("test", test_annos, join_path(root, "cars_test"), k));
  ds.split_rule =
      "devkit/cars_train_annos.mat -> train, cars_test_annos_withlabels.mat -> test "
      "(official 8,144 / 8,041)";
  return ds;
}

}  // namespace vardp::data
