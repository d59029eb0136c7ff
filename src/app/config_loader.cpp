#include "app/config_loader.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "app/sweep.hpp"
#include "app/toml_text.hpp"
#include "vardp/util/error.hpp"

namespace vardp::app {
namespace {

// Where a node came from, for error messages: "file.toml:12" or "--set model.depth=3".
class Origins {
 public:
  void add(const std::string& key, std::string origin) { overrides_[key] = std::move(origin); }
  std::string of(const std::string& key, const toml::node* node, const std::string& file) const {
    auto it = overrides_.find(key);
    if (it != overrides_.end()) return it->second;
    std::string f = file.empty() ? "<defaults>" : file;
    if (node && node->source().begin.line > 0) return f + ":" + std::to_string(node->source().begin.line);
    return f;
  }

 private:
  std::map<std::string, std::string> overrides_;
};

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string suggestion(const std::string& name, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = 3;  // suggest only close matches
  for (const auto& k : known) {
    size_t d = edit_distance(name, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

// Visitor that reads one table's fields from TOML, remembering which keys it knew.
class Reader {
 public:
  Reader(toml::table& root, const std::string& file, const Origins& origins)
      : root_(root), file_(file), origins_(origins) {}

  template <class F>
  void table(const char* name, F&& fn) {
    known_tables_.push_back(name);
    toml::node* node = root_.get(name);
    if (!node) return;
    std::string key = name;
    if (!node->is_table())
      fail(key, node, std::string("must be a table, got ") + type_name(*node));
    current_ = node->as_table();
    table_name_ = name;
    known_keys_.clear();
    fn(*this);
    for (auto&& [k, v] : *current_) {
      std::string kname(k.str());
      bool known = false;
      for (const auto& kk : known_keys_) known = known || kk == kname;
      if (!known)
        fail(table_name_ + "." + kname, &v,
             "unknown key" + suggestion(kname, known_keys_) + "; see `vardp config show --docs`");
    }
    current_ = nullptr;
  }

  template <class T>
  void field(const char* name, T& member, const char* /*doc*/) {
    known_keys_.push_back(name);
    toml::node* n = current_->get(name);
    if (n) read(table_name_ + "." + name, *n, member);
  }

  void check_unknown_tables() {
    for (auto&& [k, v] : root_) {
      std::string name(k.str());
      bool known = false;
      for (const auto& t : known_tables_) known = known || t == name;
      if (!known) fail(name, &v, "unknown table" + suggestion(name, known_tables_));
    }
  }

 private:
  [[noreturn]] void fail(const std::string& key, const toml::node* node, const std::string& what) const {
    throw UsageError(str("config error: '", key, "': ", what), origins_.of(key, node, file_));
  }
  void wrong_type(const std::string& key, const toml::node& n, const char* expected) const {
    fail(key, &n, str("expected ", expected, ", got ", type_name(n)));
  }

  void read(const std::string& key, toml::node& n, bool& out) {
    if (!n.is_boolean()) wrong_type(key, n, "a boolean");
    out = n.as_boolean()->get();
  }
  void read(const std::string& key, toml::node& n, int64_t& out) {
    if (!n.is_integer()) wrong_type(key, n, "an integer");
    out = n.as_integer()->get();
  }
  void read(const std::string& key, toml::node& n, double& out) {
    if (n.is_floating_point()) out = n.as_floating_point()->get();
    else if (n.is_integer()) out = static_cast<double>(n.as_integer()->get());
    else wrong_type(key, n, "a number");
  }
  void read(const std::string& key, toml::node& n, std::string& out) {
    if (!n.is_string()) wrong_type(key, n, "a string");
    out = n.as_string()->get();
  }
  template <class T>
  void read(const std::string& key, toml::node& n, std::optional<T>& out) {
    T v{};
    read(key, n, v);
    out = v;
  }
  template <class T>
  void read(const std::string& key, toml::node& n, std::vector<T>& out) {
    if (!n.is_array()) wrong_type(key, n, "an array");
    std::vector<T> v;
    size_t i = 0;
    for (auto& el : *n.as_array()) {
      T x{};
      read(key + "[" + std::to_string(i++) + "]", el, x);
      v.push_back(x);
    }
    out = std::move(v);
  }

  toml::table& root_;
  std::string file_;
  const Origins& origins_;
  toml::table* current_ = nullptr;
  std::string table_name_;
  std::vector<std::string> known_tables_;
  std::vector<std::string> known_keys_;
};

class Writer {
 public:
  explicit Writer(bool docs) : docs_(docs) {}
  template <class F>
  void table(const char* name, F&& fn) {
    if (!out_.str().empty()) out_ << "\n";
    out_ << "[" << name << "]\n";
    fn(*this);
  }
  template <class T>
  void field(const char* name, const T& member, const char* doc) {
    if (docs_) out_ << "# " << doc << "\n";
    emit(name, member);
  }
  std::string str() const { return out_.str(); }

 private:
  static std::string lit(bool v) { return v ? "true" : "false"; }
  static std::string lit(int64_t v) { return std::to_string(v); }
  static std::string lit(double v) { return toml_double(v); }
  static std::string lit(const std::string& v) { return toml_quote(v); }
  template <class T>
  static std::string lit(const std::vector<T>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + lit(v[i]);
    return s + "]";
  }
  template <class T>
  void emit(const char* name, const T& v) { out_ << name << " = " << lit(v) << "\n"; }
  template <class T>
  void emit(const char* name, const std::optional<T>& v) {
    if (v) out_ << name << " = " << lit(*v) << "\n";
    else out_ << "# " << name << " = (unset)\n";
  }
  bool docs_;
  std::ostringstream out_;
};

// Parses the value text of an override as a TOML value; bare words become strings so that
// `--set data.train=/path/x.h5` needs no quotes.
toml::table parse_value(const std::string& value) {
  try {
    return toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    toml::table t;
    t.insert("v", value);
    return t;
  }
}

void apply_override(toml::table& root, Origins& origins, const std::string& key, const std::string& value,
                    const std::string& origin) {
  auto dot = key.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == key.size() || key.find('.', dot + 1) != std::string::npos)
    throw UsageError("override key must be table.key, got '" + key + "'", origin);
  std::string table = key.substr(0, dot), name = key.substr(dot + 1);
  toml::node* t = root.get(table);
  if (!t) {
    root.insert(table, toml::table{});
    t = root.get(table);
  }
  if (!t->is_table()) throw UsageError("'" + table + "' is not a table", origin);
  toml::table parsed = parse_value(value);
  t->as_table()->insert_or_assign(name, *parsed.get("v"));
  origins.add(key, origin);
}

}  // namespace

std::pair<std::string, std::string> split_override(const std::string& text) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) throw UsageError("expected table.key=value, got '" + text + "'", "--set");
  return {text.substr(0, eq), text.substr(eq + 1)};
}

config::Config load_config(const ConfigSources& sources) {
  toml::table root;
  if (!sources.file.empty()) {
    try {
      root = toml::parse_file(sources.file);
    } catch (const toml::parse_error& e) {
      std::string where = sources.file;
      if (e.source().begin.line > 0) where += ":" + std::to_string(e.source().begin.line);
      throw UsageError(str("config error: TOML syntax: ", e.description()), where);
    }
  }
  Origins origins;
  bool sweep_sets_dir = false;
  std::string sweep_label;
  if (!sources.sweep_file.empty()) {
    Sweep sweep = load_sweep(sources.sweep_file);
    for (const auto& [key, value] : sweep.point(sources.sweep_index)) {
      apply_override(root, origins, key, value,
                     str(sources.sweep_file, " point ", sources.sweep_index, " (", key, "=", value, ")"));
      sweep_sets_dir = sweep_sets_dir || key == "output.dir";
    }
    sweep_label = sweep.label(sources.sweep_index);
  }
  for (const auto& s : sources.sets) {
    auto [key, value] = split_override(s);
    apply_override(root, origins, key, value, "--set " + s);
  }

  config::Config c;
  Reader reader(root, sources.file, origins);
  config::visit_config(reader, c);
  reader.check_unknown_tables();
  // Each sweep point gets its own run directory, a pure function of the point, so that a
  // requeued array element finds its checkpoints again.
  if (!sources.sweep_file.empty() && !sweep_sets_dir) c.output.dir += "/" + sweep_label;
  config::validate(c);
  return c;
}

std::string to_toml(const config::Config& c, bool with_docs) {
  Writer w(with_docs);
  config::visit_config(w, const_cast<config::Config&>(c));
  return w.str();
}

}  // namespace vardp::app
