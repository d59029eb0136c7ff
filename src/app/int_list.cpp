#include "app/int_list.hpp"

#include <sstream>

#include "vardp/util/error.hpp"

namespace vardp::app {

std::vector<int64_t> parse_int_list(const std::string& text, const std::string& option) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto b = item.find_first_not_of(' '), e = item.find_last_not_of(' ');
    if (b == std::string::npos) continue;
    item = item.substr(b, e - b + 1);
    try {
      size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (used != item.size()) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      throw UsageError(str("not an integer: '", item, "'"), option);
    }
  }
  if (out.empty()) throw UsageError("empty list", option);
  return out;
}

}  // namespace vardp::app
