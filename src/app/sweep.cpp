#include "app/sweep.hpp"
#include "app/toml_text.hpp"

#include <toml++/toml.h>

#include <cctype>
#include <cstdio>

#include "vardp/util/error.hpp"

namespace vardp::app {

int64_t Sweep::size() const {
  if (axes.empty()) return 0;
  int64_t n = 1;
  for (const auto& a : axes) n *= static_cast<int64_t>(a.values.size());
  return n;
}

std::vector<std::pair<std::string, std::string>> Sweep::point(int64_t index) const {
  if (index < 0 || index >= size())
    throw UsageError(str("sweep index ", index, " out of range [0, ", size(), ")"), path);
  std::vector<std::pair<std::string, std::string>> out(axes.size());
  // Last axis fastest: decompose the index from the back.
  int64_t rest = index;
  for (size_t i = axes.size(); i-- > 0;) {
    int64_t n = static_cast<int64_t>(axes[i].values.size());
    out[i] = {axes[i].key, axes[i].values[static_cast<size_t>(rest % n)]};
    rest /= n;
  }
  return out;
}

std::string Sweep::label(int64_t index) const {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04lld", static_cast<long long>(index));
  std::string s = buf;
  for (const auto& [key, value] : point(index)) {
    std::string v;
    for (char c : value) {
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') v += c;
      else if (c == ',' || c == ' ') v += '_';
    }
    auto dot = key.rfind('.');
    s += "-" + key.substr(dot == std::string::npos ? 0 : dot + 1) + "=" + v;
  }
  return s;
}

Sweep load_sweep(const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw UsageError(str("sweep file: TOML syntax: ", e.description()),
                     path + ":" + std::to_string(e.source().begin.line));
  }
  Sweep s;
  s.path = path;
  for (auto&& [k, v] : root) {
    std::string key(k.str());
    if (key == "base_config") {
      if (!v.is_string()) throw UsageError("base_config must be a string", path);
      s.base_config = v.as_string()->get();
    } else if (key != "axis") {
      throw UsageError("unknown key '" + key + "' (expected base_config and [[axis]] tables)", path);
    }
  }
  toml::array* axes = root["axis"].as_array();
  if (!axes || axes->empty()) throw UsageError("a sweep needs at least one [[axis]] with key and values", path);
  for (auto& node : *axes) {
    toml::table* t = node.as_table();
    std::string where = path + ":" + std::to_string(node.source().begin.line);
    if (!t) throw UsageError("[[axis]] must be a table", where);
    SweepAxis axis;
    for (auto&& [k, v] : *t) {
      std::string key(k.str());
      if (key == "key") {
        if (!v.is_string()) throw UsageError("axis key must be a string", where);
        axis.key = v.as_string()->get();
      } else if (key == "values") {
        if (!v.is_array() || v.as_array()->empty()) throw UsageError("axis values must be a non-empty array", where);
        for (auto& el : *v.as_array()) axis.values.push_back(toml_literal(el));
      } else {
        throw UsageError("unknown axis key '" + key + "' (expected key, values)", where);
      }
    }
    if (axis.key.empty() || axis.values.empty()) throw UsageError("an axis needs key and values", where);
    s.axes.push_back(std::move(axis));
  }
  return s;
}

}  // namespace vardp::app
