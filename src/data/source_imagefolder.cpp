// Users' own data in torchvision ImageFolder style: ROOT/train/<class>/<image> and, optionally,
// ROOT/test/<class>/<image>. Without ROOT/train, ROOT itself is the only (train) split. Classes
// are the sorted sub-folder names of the train root (byte order, like torchvision); files with
// extensions .jpg .jpeg .png (any case) are taken in sorted path order. A test class folder
// that train lacks is an out-of-range label.
#include <algorithm>
#include <filesystem>
#include <map>

#include "vardp/data/sources.hpp"
#include "vardp/util/error.hpp"

namespace vardp::data {
namespace fs = std::filesystem;
namespace {

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

std::vector<std::string> sorted_class_dirs(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && !n.empty() && n[0] != '.') names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

SourceSplit list_split(const std::string& name, const fs::path& dir,
                       const std::map<std::string, int64_t>& index) {
  SourceSplit split{name, {}, {}};
  std::vector<std::pair<std::string, std::string>> files;  // (path, class)
  for (const auto& cls : sorted_class_dirs(dir)) {
    for (const auto& e : fs::recursive_directory_iterator(dir / cls)) {
      const std::string fname = e.path().filename().string();
      if (e.is_regular_file() && fname[0] != '.' && is_image_name(e.path()))
        files.emplace_back(e.path().string(), cls);
    }
  }
  std::sort(files.begin(), files.end());
  int64_t id = 0;
  for (const auto& [path, cls] : files) {
    const auto it = index.find(cls);
    if (it == index.end()) {
      split.bad.push_back({path, str("label '", cls, "' out of range: class folder missing from ",
                                     "the train root")});
      continue;
    }
    split.items.push_back({path, it->second, id++});
  }
  return split;
}

}  // namespace

SourceDataset list_imagefolder(const std::string& root) {
  if (!fs::is_directory(root)) throw Error("not a directory", root);
  const fs::path train_dir = fs::exists(fs::path(root) / "train") ? fs::path(root) / "train"
                                                                   : fs::path(root);
  SourceDataset ds;
  ds.format = "imagefolder";
  ds.root = root;
  ds.class_names = sorted_class_dirs(train_dir);
  if (ds.class_names.empty()) throw Error("no class sub-folders", train_dir.string());
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < ds.class_names.size(); ++i) index[ds.class_names[i]] = int64_t(i);
  ds.splits.push_back(list_split("train", train_dir, index));
  const fs::path test_dir = fs::path(root) / "test";
  if (train_dir != fs::path(root) && fs::is_directory(test_dir))
    ds.splits.push_back(list_split("test", test_dir, index));
  ds.split_rule = "train/<class>/* -> train, test/<class>/* -> test; classes = sorted train folders";
  return ds;
}

}  // namespace vardp::data
