// TOML -> typed config. The only place that parses configuration (with toml++).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "vardp/config/config.hpp"

namespace vardp::app {

struct ConfigSources {
  std::string file;                 // TOML file; empty: defaults only
  std::vector<std::string> sets;    // "table.key=value", applied last, in order
  std::string sweep_file;           // sweep TOML; with sweep_index >= 0
  int64_t sweep_index = -1;
};

// Reads defaults <- file <- sweep point <- --set overrides. Unknown tables/keys and wrongly typed
// values throw UsageError naming the key, the file and the line (or the --set / sweep origin).
// Also runs config::validate.
config::Config load_config(const ConfigSources& sources);

// The resolved config as TOML (every key, declaration order; unset optionals as comments).
// with_docs: each key preceded by its documentation comment.
std::string to_toml(const config::Config& c, bool with_docs = false);

// "a.b=value" -> ("a.b", "value"); throws UsageError if malformed.
std::pair<std::string, std::string> split_override(const std::string& text);

}  // namespace vardp::app
