// vardp config show: the resolved configuration (or every key with its documentation).
#include <iostream>

#include "app/command.hpp"
#include "app/config_loader.hpp"
#include "app/job.hpp"
#include "vardp/util/error.hpp"

namespace vardp::app {
namespace {
int run_config(const std::vector<std::string>& args) {
  po::options_description options("vardp config show [options]");
  add_config_options(options);
  options.add_options()("docs", po::bool_switch(), "print each key's documentation as a comment");
  po::positional_options_description pos;
  pos.add("action", 1);
  po::options_description hidden;
  hidden.add_options()("action", po::value<std::string>()->default_value("show"), "show");
  po::options_description all;
  all.add(options).add(hidden);
  po::variables_map vm;
  if (!parse_command_line(args, "vardp config show [--config FILE] [--set k=v ...] [--docs]", all, vm, &pos))
    return 0;
  if (vm["action"].as<std::string>() != "show") throw UsageError("unknown action (expected: show)", "vardp config");
  config::Config c = load_config(config_sources(vm));
  std::cout << to_toml(c, vm["docs"].as<bool>());
  return 0;
}
}  // namespace
VARDP_COMMAND("config", "print the resolved configuration (show [--docs])", run_config);
}  // namespace vardp::app
