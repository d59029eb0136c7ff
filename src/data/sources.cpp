// Dispatch over the source layouts, class subsets and per-class subsets.
#include "vardp/data/sources.hpp"

#include <algorithm>
#include <fstream>
#include <numeric>
#include <sstream>

#include "vardp/util/error.hpp"
#include "vardp/util/rng.hpp"

namespace vardp::data {

const std::vector<std::string>& source_formats() {
  static const std::vector<std::string> kFormats = {"flowers102",  "cub200",      "food101",
                                                    "stanford_cars", "oxford_pets", "imagefolder",
                                                    "fashion_mnist"};
  return kFormats;
}

SourceDataset list_source(const std::string& format, const std::string& root,
                          const SourceOptions& options) {
  if (format == "flowers102") return list_flowers102(root, options);
  if (format == "cub200") return list_cub200(root);
  if (format == "food101") return list_food101(root);
  if (format == "stanford_cars") return list_stanford_cars(root);
  if (format == "oxford_pets") return list_oxford_pets(root);
  if (format == "imagefolder") return list_imagefolder(root);
  if (format == "fashion_mnist") return list_fashion_mnist(root, options);
  std::string known;
  for (const auto& f : source_formats()) known += (known.empty() ? "" : ", ") + f;
  throw UsageError(str("unknown dataset format '", format, "' (known: ", known, ")"), "--format");
}

void keep_classes(SourceDataset* ds, const std::vector<int64_t>& classes) {
  if (classes.empty()) return;
  const int64_t k_total = int64_t(ds->class_names.size());
  std::vector<int64_t> remap(size_t(k_total), -1);
  std::vector<std::string> names;
  for (size_t k = 0; k < classes.size(); ++k) {
    const int64_t c = classes[k];
    if (c < 0 || c >= k_total)
      throw UsageError(str("class ", c, " does not exist (", ds->format, " has classes 0..",
                           k_total - 1, ")"),
                       "--classes");
    if (remap[size_t(c)] >= 0) throw UsageError(str("class ", c, " listed twice"), "--classes");
    remap[size_t(c)] = int64_t(k);
    names.push_back(ds->class_names[size_t(c)]);
  }
  for (auto& split : ds->splits) {
    std::vector<SourceItem> kept;
    for (auto& item : split.items) {
      const int64_t m = remap[size_t(item.label)];
      if (m < 0) continue;
      item.label = m;
      kept.push_back(std::move(item));
    }
    split.items = std::move(kept);
  }
  ds->class_names = std::move(names);
}

void subsample_per_class(SourceSplit* split, int64_t num_classes, int64_t per_class,
                         uint64_t seed) {
  if (per_class <= 0) return;
  std::vector<std::vector<size_t>> by_class(static_cast<size_t>(num_classes));
  for (size_t i = 0; i < split->items.size(); ++i)
    by_class[size_t(split->items[i].label)].push_back(i);
  std::vector<char> keep(split->items.size(), 0);
  for (int64_t c = 0; c < num_classes; ++c) {
    auto& idx = by_class[size_t(c)];
    // Fisher-Yates driven by a stream keyed by the class, then the first per_class.
    rng::Stream stream(seed, rng::Purpose::shuffle, uint64_t(c));
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[stream.below(i)]);
    const size_t n = std::min(idx.size(), size_t(per_class));
    for (size_t i = 0; i < n; ++i) keep[idx[i]] = 1;
  }
  std::vector<SourceItem> kept;
  for (size_t i = 0; i < split->items.size(); ++i)
    if (keep[i]) kept.push_back(std::move(split->items[i]));
  split->items = std::move(kept);
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open annotation file", path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    lines.push_back(line);
  }
  if (in.bad()) throw Error("read error", path);
  return lines;
}

std::vector<std::string> split_ws(const std::string& line) {
  std::istringstream is(line);
  std::vector<std::string> out;
  std::string tok;
  while (is >> tok) out.push_back(tok);
  return out;
}

int64_t parse_int(const std::string& token, const std::string& context) {
  size_t pos = 0;
  int64_t v = 0;
  try {
    v = std::stoll(token, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos == 0 || pos != token.size()) throw Error(str("not an integer: '", token, "'"), context);
  return v;
}

std::string join_path(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

}  // namespace vardp::data
