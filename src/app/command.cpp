#include "app/command.hpp"

#include <algorithm>
#include <memory>

namespace vardp::app {
namespace {
std::vector<Command>& registry() {
  static auto* r = new std::vector<Command>();  // never destroyed: used from static initialisers
  return *r;
}
}  // namespace

void register_command(Command command) {
  auto& r = registry();
  r.push_back(std::move(command));
  std::sort(r.begin(), r.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
}

const std::vector<Command>& commands() { return registry(); }

const Command* find_command(const std::string& name) {
  for (const auto& c : registry())
    if (c.name == name) return &c;
  return nullptr;
}

}  // namespace vardp::app
