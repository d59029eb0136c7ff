// Caltech-UCSD Birds-200-2011 (CUB_200_2011/): images/<class dir>/<file>.jpg, images.txt
// ("<image id> <relative path>"), image_class_labels.txt ("<image id> <class id>"),
// train_test_split.txt ("<image id> <1 = train, 0 = test>"), classes.txt ("<class id> <name>").
// Official split: 5,994 train / 5,794 test. Class names are kept as published
// ("001.Black_footed_Albatross"); label = position of the class id in classes.txt.
#include <map>

#include "vardp/data/sources.hpp"
#include "vardp/util/error.hpp"

namespace vardp::data {

SourceDataset list_cub200(const std::string& root) {
  const std::string classes_file = join_path(root, "classes.txt");
  const std::string images_file = join_path(root, "images.txt");
  const std::string labels_file = join_path(root, "image_class_labels.txt");
  const std::string split_file = join_path(root, "train_test_split.txt");

  SourceDataset ds;
  ds.format = "cub200";
  ds.root = root;
  std::map<int64_t, int64_t> class_index;  // class id -> label
  for (const auto& line : read_lines(classes_file)) {
    const auto pos = line.find_first_of(" \t");
    if (pos == std::string::npos) throw Error(str("malformed line '", line, "'"), classes_file);
    const int64_t id = parse_int(line.substr(0, pos), classes_file);
    if (!class_index.emplace(id, int64_t(ds.class_names.size())).second)
      throw Error(str("class id ", id, " listed twice"), classes_file);
    ds.class_names.push_back(line.substr(line.find_first_not_of(" \t", pos)));
  }

  auto read_pairs = [](const std::string& file) {
    std::map<int64_t, std::string> m;
    for (const auto& line : read_lines(file)) {
      const auto pos = line.find_first_of(" \t");
      if (pos == std::string::npos) throw Error(str("malformed line '", line, "'"), file);
      const int64_t id = parse_int(line.substr(0, pos), file);
      m[id] = line.substr(line.find_first_not_of(" \t", pos));
    }
    return m;
  };
  const auto labels = read_pairs(labels_file);
  const auto is_train = read_pairs(split_file);

  SourceSplit train{"train", {}, {}}, test{"test", {}, {}};
  for (const auto& line : read_lines(images_file)) {
    const auto pos = line.find_first_of(" \t");
    if (pos == std::string::npos) throw Error(str("malformed line '", line, "'"), images_file);
    const int64_t id = parse_int(line.substr(0, pos), images_file);
    const std::string path =
        join_path(join_path(root, "images"), line.substr(line.find_first_not_of(" \t", pos)));
    const auto split_it = is_train.find(id);
    if (split_it == is_train.end())
      throw Error(str("image id ", id, " (", path, ") has no train/test entry"), split_file);
    SourceSplit& split =
        parse_int(split_it->second, split_file) == 1 ? train : test;
    const auto label_it = labels.find(id);
    if (label_it == labels.end()) {
      split.bad.push_back({path, str("no class label for image id ", id, " in ", labels_file)});
      continue;
    }
    const int64_t class_id = parse_int(label_it->second, labels_file);
    const auto cls = class_index.find(class_id);
    if (cls == class_index.end()) {
      split.bad.push_back({path, str("label ", class_id, " out of range (not a class id of ",
                                     classes_file, ") in ", labels_file)});
      continue;
    }
    split.items.push_back({path, cls->second, id});
  }
  ds.splits = {std::move(train), std::move(test)};
  ds.split_rule = "train_test_split.txt: is_train 1 -> train, 0 -> test (official 5,994 / 5,794)";
  return ds;
}

}  // namespace vardp::data
