// Oxford-IIIT Pet (Parkhi et al. 2012): images/<name>.jpg, annotations/trainval.txt and
// annotations/test.txt ("<name> <class id 1..37> <species> <breed id>", '#' comments).
// Official split 3,680 / 3,669. Class names are the image-name prefix of each class
// ("Abyssinian", "american_bulldog": capitalised = cat, lower case = dog).
#include "vardp/data/sources.hpp"
#include "vardp/util/error.hpp"

namespace vardp::data {
namespace {

constexpr int64_t kPetClasses = 37;

std::string breed_of(const std::string& name) {
  const auto us = name.rfind('_');
  if (us == std::string::npos) return name;
  return name.substr(0, us);
}

}  // namespace

SourceDataset list_oxford_pets(const std::string& root) {
  const std::string ann = join_path(root, "annotations");
  SourceDataset ds;
  ds.format = "oxford_pets";
  ds.root = root;
  ds.class_names.assign(size_t(kPetClasses), std::string());
  const std::pair<const char*, const char*> lists[] = {{"train", "trainval.txt"},
                                                        {"test", "test.txt"}};
  for (const auto& [name, file] : lists) {
    const std::string list_file = join_path(ann, file);
    SourceSplit split{name, {}, {}};
    int64_t line_no = 0;
    for (const auto& line : read_lines(list_file)) {
      ++line_no;
      if (line[0] == '#') continue;
      const auto tok = split_ws(line);
      if (tok.size() < 2) throw Error(str("malformed line ", line_no, ": '", line, "'"), list_file);
      const std::string path = join_path(join_path(root, "images"), tok[0] + ".jpg");
      const int64_t c = parse_int(tok[1], str(list_file, ":", line_no));
      if (c < 1 || c > kPetClasses) {
        split.bad.push_back({path, str("label ", c, " out of range 1..", kPetClasses, " at ",
                                       list_file, ":", line_no)});
        continue;
      }
      if (ds.class_names[size_t(c - 1)].empty()) ds.class_names[size_t(c - 1)] = breed_of(tok[0]);
      split.items.push_back({path, c - 1, line_no});
    }
    ds.splits.push_back(std::move(split));
  }
  for (size_t c = 0; c < ds.class_names.size(); ++c)
    if (ds.class_names[c].empty()) ds.class_names[c] = str("class_", c + 1);
  ds.split_rule = "annotations/trainval.txt -> train, annotations/test.txt -> test "
                  "(official 3,680 / 3,669)";
  return ds;
}

}  // namespace vardp::data
