#include "app/run_main.hpp"

#include <iostream>

#include "app/command.hpp"
#include "app/job.hpp"
#include "vardp/util/build_info.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/exit_codes.hpp"
#include "vardp/util/log.hpp"

namespace vardp::app {
namespace {

void print_usage(std::ostream& os) {
  os << "vardp " << version_string() << " - differentially private adaptation of VAR image models\n\n"
     << "usage: vardp <command> [options]     (vardp <command> --help for its options)\n\ncommands:\n";
  for (const auto& c : commands()) {
    os << "  " << c.name;
    for (size_t i = c.name.size(); i < 18; ++i) os << ' ';
    os << c.summary << "\n";
  }
  os << "\nexit codes: 0 success, 1 error, 2 usage error, 75 checkpoint written - requeue the job\n";
}

int rank_or_zero() { return world_started() ? world().rank() : 0; }
int size_or_one() { return world_started() ? world().size() : 1; }

// Ends the process after an error. Collective errors (and any error in a one-rank job) return
// normally through MPI_Finalize; an error seen by one rank of many must not leave the others
// waiting in a collective, so it aborts the whole job.
int fail(const std::string& message, int code, bool collective) {
  if (size_or_one() > 1 && !collective) {
    std::cerr << "[rank " << rank_or_zero() << "] error: " << message << std::endl;
    world().abort(code);
  }
  if (rank_or_zero() == 0) std::cerr << "error: " << message << std::endl;
  finalize_world();
  return code;
}

}  // namespace

int run_main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty()) {
      print_usage(std::cerr);
      return kExitUsage;
    }
    if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
      print_usage(std::cout);
      return kExitSuccess;
    }
    if (args[0] == "--version") {
      std::cout << "vardp " << version_string() << " (" << git_sha() << ")\n";
      return kExitSuccess;
    }
    const Command* cmd = find_command(args[0]);
    if (!cmd) throw UsageError("unknown command '" + args[0] + "' (see vardp --help)");
    int rc = cmd->run(std::vector<std::string>(args.begin() + 1, args.end()));
    finalize_world();
    return rc;
  } catch (const CollectiveError& e) {
    return fail(e.what(), e.usage() ? kExitUsage : kExitError, true);
  } catch (const UsageError& e) {
    // Option and config errors come from input every rank reads identically.
    return fail(e.what(), kExitUsage, true);
  } catch (const std::exception& e) {
    return fail(e.what(), kExitError, false);
  }
}

}  // namespace vardp::app
