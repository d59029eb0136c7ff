#include "app/job.hpp"

#include <iostream>

#include "vardp/util/build_info.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::app {
namespace {
std::unique_ptr<dist::MpiRuntime> g_mpi;
std::unique_ptr<dist::Comm> g_world;
}  // namespace

void add_config_options(po::options_description& options) {
  options.add_options()
    ("config,c", po::value<std::string>()->default_value(""), "TOML config file (defaults if empty)")
    ("set", po::value<std::vector<std::string>>()->composing(),
     "override one key: --set table.key=value (repeatable, applied last)")
    ("sweep", po::value<std::string>()->default_value(""), "sweep TOML file (see `vardp sweep list`)")
    ("sweep-index", po::value<int64_t>()->default_value(-1),
     "point of the sweep to apply (e.g. $SLURM_ARRAY_TASK_ID)")
    ("log-level", po::value<std::string>()->default_value("info"), "debug | info | warn | error")
    ("log-all-ranks", po::bool_switch(), "every rank logs, lines prefixed [rank N]");
}

ConfigSources config_sources(const po::variables_map& vm) {
  ConfigSources s;
  s.file = vm["config"].as<std::string>();
  if (vm.count("set")) s.sets = vm["set"].as<std::vector<std::string>>();
  s.sweep_file = vm["sweep"].as<std::string>();
  s.sweep_index = vm["sweep-index"].as<int64_t>();
  if (!s.sweep_file.empty() && s.sweep_index < 0)
    throw UsageError("--sweep needs --sweep-index I (0-based)");
  if (s.sweep_file.empty() && s.sweep_index >= 0) throw UsageError("--sweep-index needs --sweep FILE");
  return s;
}

dist::Comm& world() {
  if (!g_world) {
    g_mpi = std::make_unique<dist::MpiRuntime>(nullptr, nullptr);
    g_world = dist::make_world_comm();
  }
  return *g_world;
}

bool world_started() { return g_world != nullptr; }

void finalize_world() {
  g_world.reset();
  g_mpi.reset();
}

Job start_job(const po::variables_map& vm, const std::string& command) {
  Job job;
  job.comm = &world();
  dist::Comm& comm = *job.comm;
  bool all_ranks = vm.count("log-all-ranks") && vm["log-all-ranks"].as<bool>();
  log::configure(comm.rank(), all_ranks, log::level_from_string(vm["log-level"].as<std::string>()));
  dist::check_world_size_against_slurm(comm);

  // Every rank parses the same files; agree on failure so that no rank waits in a collective.
  std::string error;
  try {
    job.config = load_config(config_sources(vm));
  } catch (const Error& e) {
    error = e.what();
  }
  if (comm.any_flag(!error.empty())) {
    std::string msg = comm.broadcast(error, 0);
    if (msg.empty()) msg = "config failed on another rank";
    throw CollectiveError(msg, "", /*usage=*/true);
  }
  if (all_ranks) job.config.dist.log_all_ranks = true;
  log::configure(comm.rank(), job.config.dist.log_all_ranks, log::level_from_string(vm["log-level"].as<std::string>()));
  job.resolved_toml = to_toml(job.config);
  dist::check_same_config(comm, job.resolved_toml);
  log::info("vardp ", version_string(), " (", git_sha(), ") ", command, " on ", comm.size(), " rank(s), ",
            comm.backend(), ", ", torch_description());
  log::info("resolved config:\n", job.resolved_toml);
  return job;
}

bool parse_command_line(const std::vector<std::string>& args, const std::string& usage,
                        const po::options_description& options, po::variables_map& vm,
                        const po::positional_options_description* positional) {
  po::options_description all(options);
  all.add_options()("help,h", "show this help");
  try {
    po::command_line_parser parser(args);
    parser.options(all);
    if (positional) parser.positional(*positional);
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: " << usage << "\n\n" << all << std::flush;
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(std::string(e.what()) + " (see --help)", "vardp " + usage.substr(0, usage.find(' ', 6)));
  }
  return true;
}

}  // namespace vardp::app
