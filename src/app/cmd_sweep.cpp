// vardp sweep list FILE: index -> overrides of every point of a sweep file.
#include <iostream>

#include "app/command.hpp"
#include "app/job.hpp"
#include "app/sweep.hpp"
#include "vardp/util/error.hpp"

namespace vardp::app {
namespace {
int run_sweep(const std::vector<std::string>& args) {
  po::options_description options("vardp sweep list FILE");
  options.add_options()("labels", po::bool_switch(), "also print each point's run-directory label");
  po::options_description hidden;
  hidden.add_options()("action", po::value<std::string>(), "")("file", po::value<std::string>(), "");
  po::positional_options_description pos;
  pos.add("action", 1).add("file", 1);
  po::options_description all;
  all.add(options).add(hidden);
  po::variables_map vm;
  if (!parse_command_line(args,
                          "vardp sweep list FILE [--labels]\n\n"
                          "Prints one line per point: INDEX<TAB>table.key=value ... The first [[axis]] varies\n"
                          "slowest and the last fastest (nested loops in file order); indices start at 0.\n"
                          "Use a point with: vardp train --config X.toml --sweep FILE --sweep-index I",
                          all, vm, &pos))
    return 0;
  if (!vm.count("action") || vm["action"].as<std::string>() != "list" || !vm.count("file"))
    throw UsageError("usage: vardp sweep list FILE", "vardp sweep");
  Sweep s = load_sweep(vm["file"].as<std::string>());
  bool labels = vm["labels"].as<bool>();
  for (int64_t i = 0; i < s.size(); ++i) {
    std::cout << i;
    for (const auto& [k, v] : s.point(i)) std::cout << '\t' << k << '=' << v;
    if (labels) std::cout << '\t' << s.label(i);
    std::cout << '\n';
  }
  return 0;
}
}  // namespace
VARDP_COMMAND("sweep", "list the points of a sweep file (list FILE)", run_sweep);
}  // namespace vardp::app
