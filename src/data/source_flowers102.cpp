// Oxford Flowers 102 (Nilsback & Zisserman 2008): jpg/image_NNNNN.jpg, imagelabels.mat
// (`labels`, 1 x 8189, classes 1..102) and setid.mat (`trnid` 1,020, `valid` 1,020, `tstid`
// 6,149 image numbers). The paper's split is train = trnid (1,020), test = tstid (6,149);
// `valid` is left out unless SourceOptions::flowers_valid says where it goes.
#include <cstdio>

#include "vardp/data/mat_file.hpp"
#include "vardp/data/sources.hpp"
#include "vardp/util/error.hpp"

namespace vardp::data {
namespace {

constexpr int64_t kFlowerClasses = 102;

// Names as published with the dataset's torchvision/TFDS loaders, in label order 1..102.
const char* const kFlowerNames[kFlowerClasses] = {
    "pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea",
    "english marigold", "tiger lily", "moon orchid", "bird of paradise", "monkshood",
    "globe thistle", "snapdragon", "colt's foot", "king protea", "spear thistle", "yellow iris",
    "globe-flower", "purple coneflower", "peruvian lily", "balloon flower",
    "giant white arum lily", "fire lily", "pincushion flower", "fritillary", "red ginger",
    "grape hyacinth", "corn poppy", "prince of wales feathers", "stemless gentian", "artichoke",
    "sweet william", "carnation", "garden phlox", "love in the mist", "mexican aster",
    "alpine sea holly", "ruby-lipped cattleya", "cape flower", "great masterwort", "siam tulip",
    "lenten rose", "barbeton daisy", "daffodil", "sword lily", "poinsettia", "bolero deep blue",
    "wallflower", "marigold", "buttercup", "oxeye daisy", "common dandelion", "petunia",
    "wild pansy", "primula", "sunflower", "pelargonium", "bishop of llandaff", "gaura",
    "geranium", "orange dahlia", "pink-yellow dahlia", "cautleya spicata", "japanese anemone",
    "black-eyed susan", "silverbush", "californian poppy", "osteospermum", "spring crocus",
    "bearded iris", "windflower", "tree poppy", "gazania", "azalea", "water lily", "rose",
    "thorn apple", "morning glory", "passion flower", "lotus", "toad lily", "anthurium",
    "frangipani", "clematis", "hibiscus", "columbine", "desert-rose", "tree mallow", "magnolia",
    "cyclamen", "watercress", "canna lily", "hippeastrum", "bee balm", "ball moss", "foxglove",
    "bougainvillea", "camellia", "mallow", "mexican petunia", "bromelia", "blanket flower",
    "trumpet creeper", "blackberry lily"};

std::string image_path(const std::string& root, int64_t id) {
  char name[32];
  std::snprintf(name, sizeof name, "image_%05lld.jpg", static_cast<long long>(id));
  return join_path(join_path(root, "jpg"), name);
}

void add_ids(const std::string& root, const std::string& labels_file,
             const std::vector<double>& labels, const std::vector<double>& ids,
             SourceSplit* split) {
  for (double d : ids) {
    const int64_t id = static_cast<int64_t>(d);
    const std::string path = image_path(root, id);
    if (double(id) != d || id < 1 || id > int64_t(labels.size())) {
      split->bad.push_back({path, str("image number ", d, " has no entry in ", labels_file,
                                      " (", labels.size(), " labels)")});
      continue;
    }
    const double label = labels[size_t(id - 1)];
    if (label != double(int64_t(label)) || label < 1 || label > kFlowerClasses) {
      split->bad.push_back({path, str("label ", label, " out of range 1..", kFlowerClasses,
                                      " in ", labels_file)});
      continue;
    }
    split->items.push_back({path, int64_t(label) - 1, id});
  }
}

}  // namespace

SourceDataset list_flowers102(const std::string& root, const SourceOptions& options) {
  const std::string& where = options.flowers_valid;
  if (where != "none" && where != "train" && where != "test")
    throw UsageError("must be none, train or test", "--flowers-valid");
  const std::string labels_file = join_path(root, "imagelabels.mat");
  const std::string setid_file = join_path(root, "setid.mat");
  std::vector<double> labels;
  {
    MatFile m(labels_file);
    labels = m.numeric("labels");
  }
  MatFile s(setid_file);
  const std::vector<double> trnid = s.numeric("trnid");
  const std::vector<double> valid = s.numeric("valid");
  const std::vector<double> tstid = s.numeric("tstid");

  SourceDataset ds;
  ds.format = "flowers102";
  ds.root = root;
  for (const char* n : kFlowerNames) ds.class_names.emplace_back(n);
  SourceSplit train{"train", {}, {}}, test{"test", {}, {}};
  add_ids(root, labels_file, labels, trnid, &train);
  if (where == "train") add_ids(root, labels_file, labels, valid, &train);
  add_ids(root, labels_file, labels, tstid, &test);
  if (where == "test") add_ids(root, labels_file, labels, valid, &test);
  ds.splits = {std::move(train), std::move(test)};
  ds.split_rule = str("setid.mat: train = trnid, test = tstid, valid -> ", where,
                      " (paper split: 1,020 / 6,149)");
  return ds;
}

}  // namespace vardp::data
