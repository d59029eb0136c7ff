// Sweep files: axes whose Cartesian product is enumerated in a documented order (the first axis
// varies slowest, the last fastest, like nested loops written in file order). Each point is a
// list of `table.key=value` overrides applied between the config file and --set.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace vardp::app {

struct SweepAxis {
  std::string key;                   // table.key
  std::vector<std::string> values;   // TOML literals, e.g. "10.0", "\"lora\""
};

struct Sweep {
  std::string path;
  std::string base_config;           // optional config the sweep is meant for (relative to the file)
  std::vector<SweepAxis> axes;
  int64_t size() const;
  // Overrides of point `index` (0 <= index < size()); throws UsageError otherwise.
  std::vector<std::pair<std::string, std::string>> point(int64_t index) const;
  // Short, file-system safe label such as "0003-dp.target_epsilon=50".
  std::string label(int64_t index) const;
};

Sweep load_sweep(const std::string& path);

}  // namespace vardp::app
