// Food-101 (food-101/): images/<class>/<id>.jpg, meta/classes.txt (one class per line, label =
// line index), meta/train.txt and meta/test.txt ("<class>/<id>", no extension). Official split
// 75,750 / 25,250.
#include <map>

#include "vardp/data/sources.hpp"
#include "vardp/util/error.hpp"

namespace vardp::data {

SourceDataset list_food101(const std::string& root) {
  const std::string meta = join_path(root, "meta");
  const std::string classes_file = join_path(meta, "classes.txt");
  SourceDataset ds;
  ds.format = "food101";
  ds.root = root;
  std::map<std::string, int64_t> index;
  for (const auto& line : read_lines(classes_file)) {
    const auto tok = split_ws(line);
    if (tok.size() != 1) throw Error(str("malformed class line '", line, "'"), classes_file);
    if (!index.emplace(tok[0], int64_t(ds.class_names.size())).second)
      throw Error(str("class '", tok[0], "' listed twice"), classes_file);
    ds.class_names.push_back(tok[0]);
  }
  for (const std::string name : {"train", "test"}) {
    const std::string list_file = join_path(meta, name + ".txt");
    SourceSplit split{name, {}, {}};
    int64_t line_no = 0;
    for (const auto& line : read_lines(list_file)) {
      ++line_no;
      const auto tok = split_ws(line);
      if (tok.size() != 1) throw Error(str("malformed line ", line_no, ": '", line, "'"), list_file);
      const std::string path = join_path(join_path(root, "images"), tok[0] + ".jpg");
      const auto slash = tok[0].find('/');
      const std::string cls = slash == std::string::npos ? std::string() : tok[0].substr(0, slash);
      const auto it = index.find(cls);
      if (it == index.end()) {
        split.bad.push_back({path, str("label '", cls, "' out of range (not in ", classes_file,
                                       ") at ", list_file, ":", line_no)});
        continue;
      }
      split.items.push_back({path, it->second, line_no});
    }
    ds.splits.push_back(std::move(split));
  }
  ds.split_rule = "meta/train.txt -> train, meta/test.txt -> test (official 75,750 / 25,250)";
  return ds;
}

}  // namespace vardp::data
