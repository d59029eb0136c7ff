// Subcommand registry. Each src/app/cmd_*.cpp registers its command with VARDP_COMMAND; the CLI
// objects are linked as an OBJECT library so every registration is kept.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace vardp::app {

struct Command {
  std::string name;     // e.g. "train", "sweep"
  std::string summary;  // one line for `vardp --help`
  // Receives the arguments after the command name; returns the process exit code.
  std::function<int(const std::vector<std::string>& args)> run;
};

void register_command(Command command);
const std::vector<Command>& commands();  // sorted by name
const Command* find_command(const std::string& name);

struct CommandRegistrar {
  explicit CommandRegistrar(Command command) { register_command(std::move(command)); }
};

}  // namespace vardp::app

#define VARDP_CONCAT_INNER(a, b) a##b
#define VARDP_CONCAT(a, b) VARDP_CONCAT_INNER(a, b)
// VARDP_COMMAND("name", "summary", function) at namespace scope in a cmd_*.cpp file.
#define VARDP_COMMAND(name, summary, fn) \
  static ::vardp::app::CommandRegistrar VARDP_CONCAT(vardp_command_, __LINE__){{name, summary, fn}}
