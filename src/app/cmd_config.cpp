// vardp config show: the resolved configuration (or every key with its documentation).
// vardp config check FILE...: loads and validates many config files (and every point of a sweep
// on each) in one process, one line per file; exit 2 when any fails.
#include <iostream>

#include "app/command.hpp"
#include "app/config_loader.hpp"
#include "app/job.hpp"
#include "app/sweep.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/exit_codes.hpp"

namespace vardp::app {
namespace {

constexpr const char* kConfigUsage =
    "vardp config show [--config FILE] [--set k=v ...] [--docs]\n"
    "       vardp config check FILE... [--set k=v ...] [--sweep S]   (with --sweep: every point on every file)";

// One line per checked (file, sweep point): "ok ..." or "FAILED ...: reason". Returns the failures.
int check_files(const std::vector<std::string>& files, const ConfigSources& common) {
  int64_t points = 1;
  if (!common.sweep_file.empty()) points = load_sweep(common.sweep_file).size();
  int checked = 0, failed = 0;
  for (const auto& file : files) {
    for (int64_t i = 0; i < points; ++i) {
      ConfigSources s = common;
      s.file = file;
      s.sweep_index = common.sweep_file.empty() ? -1 : i;
      const std::string what = s.sweep_index >= 0 ? str(file, " (", s.sweep_file, " point ", i, ")") : file;
      ++checked;
      try {
        load_config(s);
        std::cout << "ok " << what << "\n";
      } catch (const Error& e) {
        ++failed;
        std::cout << "FAILED " << what << ": " << e.what() << "\n";
      }
    }
  }
  std::cout << checked << " config(s) checked, " << failed << " failed\n";
  return failed;
}

int run_config(const std::vector<std::string>& args) {
  po::options_description options(kConfigUsage);
  add_config_options(options);
  options.add_options()("docs", po::bool_switch(), "show: print each key's documentation as a comment");
  po::positional_options_description pos;
  pos.add("action", 1).add("files", -1);
  po::options_description hidden;
  hidden.add_options()("action", po::value<std::string>()->default_value("show"), "show | check")(
      "files", po::value<std::vector<std::string>>()->composing(), "check: config files");
  po::options_description all;
  all.add(options).add(hidden);
  po::variables_map vm;
  if (!parse_command_line(args, kConfigUsage, all, vm, &pos)) return 0;
  const std::string action = vm["action"].as<std::string>();
  if (action == "check") {
    if (!vm.count("files")) throw UsageError("config check needs at least one FILE", "vardp config check");
    if (!vm["config"].as<std::string>().empty() || vm["sweep-index"].as<int64_t>() >= 0)
      throw UsageError("config check takes FILEs (not --config) and checks every sweep point (no --sweep-index)",
                       "vardp config check");
    ConfigSources common;
    if (vm.count("set")) common.sets = vm["set"].as<std::vector<std::string>>();
    common.sweep_file = vm["sweep"].as<std::string>();
    return check_files(vm["files"].as<std::vector<std::string>>(), common) == 0 ? kExitSuccess : kExitUsage;
  }
  if (action != "show") throw UsageError("unknown action (expected: show or check)", "vardp config");
  if (vm.count("files")) throw UsageError("config show takes --config FILE, not positional files", "vardp config show");
  config::Config c = load_config(config_sources(vm));
  std::cout << to_toml(c, vm["docs"].as<bool>());
  return 0;
}

}  // namespace
VARDP_COMMAND("config", "print the resolved configuration (show [--docs]) or validate files (check FILE...)",
              run_config);
}  // namespace vardp::app
