// Writing TOML literals (the resolved config, sweep points).
#pragma once
#include <string>

#include <toml++/toml.h>

namespace vardp::app {
std::string toml_quote(const std::string& s);
// Shortest text that reads back to the same double, always with a '.' or exponent.
std::string toml_double(double v);
// A scalar or array node as a TOML literal.
std::string toml_literal(const toml::node& n);
}  // namespace vardp::app
