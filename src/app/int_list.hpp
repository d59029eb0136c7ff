// Comma-separated integer lists on the command line (--patch-nums 1,2,3, --classes 1,5,9).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vardp::app {

// "1,2, 3" -> {1, 2, 3}; empty items are skipped. Throws UsageError naming `option` for a
// non-integer item or an empty list.
std::vector<int64_t> parse_int_list(const std::string& text, const std::string& option);

}  // namespace vardp::app
