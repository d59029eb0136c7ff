// Self-describing output files: every HDF5 file vardp writes carries these root attributes.
#pragma once
#include <string>

#include "vardp/io/h5.hpp"

namespace vardp::io {

struct Provenance {
  std::string format;          // e.g. "vardp.metrics", "vardp.checkpoint"
  int64_t format_version = 1;
  std::string config_toml;     // resolved config (empty when the file has none)
  int64_t world_size = 1;
};

// Writes format, format_version, vardp_version, git_sha, created_utc, config_toml, world_size and
// the Slurm variables that are set (SLURM_JOB_ID, SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID,
// SLURM_RESTART_COUNT) as root attributes.
void write_provenance(hid_t file, const Provenance& p);

// Throws a clear Error if the file is not of `format` or has a format_version newer than
// `max_supported_version`. Returns the file's format_version.
int64_t check_format(hid_t file, const std::string& path, const std::string& format,
                     int64_t max_supported_version);

}  // namespace vardp::io
