// Start-up shared by the job commands: MPI, logging, config resolution agreed by all ranks.
#pragma once
#include <boost/program_options.hpp>

#include <memory>
#include <string>

#include "app/config_loader.hpp"
#include "vardp/config/config.hpp"
#include "vardp/dist/comm.hpp"

namespace vardp::app {

namespace po = boost::program_options;

// --config, --set (repeatable), --sweep, --sweep-index, --log-level, --log-all-ranks.
void add_config_options(po::options_description& options);
ConfigSources config_sources(const po::variables_map& vm);

// The world communicator; initialises MPI on first use (finalised by run_main on exit).
dist::Comm& world();
bool world_started();
void finalize_world();

struct Job {
  dist::Comm* comm = nullptr;
  config::Config config;
  std::string resolved_toml;
};

// Initialises MPI, checks SLURM_NTASKS, resolves the config on every rank (a config error on any
// rank becomes a CollectiveError on all), checks all ranks agree (hash) and logs the resolved
// config on rank 0.
Job start_job(const po::variables_map& vm, const std::string& command);

// Parses args with `options` (+ positional), handling --help. Returns false if help was printed.
bool parse_command_line(const std::vector<std::string>& args, const std::string& usage,
                        const po::options_description& options, po::variables_map& vm,
                        const po::positional_options_description* positional = nullptr);

}  // namespace vardp::app
