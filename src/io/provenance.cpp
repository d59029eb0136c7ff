#include "vardp/io/provenance.hpp"

#include <cstdlib>

#include "vardp/util/build_info.hpp"
#include "vardp/util/error.hpp"
#include "vardp/util/log.hpp"

namespace vardp::io {

void write_provenance(hid_t file, const Provenance& p) {
  h5_write_attr(file, "format", p.format);
  h5_write_attr(file, "format_version", p.format_version);
  h5_write_attr(file, "vardp_version", version_string());
  h5_write_attr(file, "git_sha", git_sha());
  h5_write_attr(file, "created_utc", log::utc_now_iso());
  h5_write_attr(file, "config_toml", p.config_toml);
  h5_write_attr(file, "world_size", p.world_size);
  for (const char* var : {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT"}) {
    if (const char* v = std::getenv(var)) h5_write_attr(file, var, std::string(v));
  }
}

int64_t check_format(hid_t file, const std::string& path, const std::string& format, int64_t max_supported_version) {
  if (!h5_has_attr(file, "format"))
    throw Error(str("not a vardp file of format '", format, "' (no 'format' attribute)"), path);
  std::string got = h5_read_attr_string(file, "format");
  if (got != format) throw Error(str("file has format '", got, "', expected '", format, "'"), path);
  int64_t version = h5_has_attr(file, "format_version") ? h5_read_attr_int(file, "format_version") : 0;
  if (version > max_supported_version)
    throw Error(str("format '", format, "' version ", version, " is newer than this vardp supports (",
                    max_supported_version, "); upgrade vardp"),
                path);
  return version;
}

}  // namespace vardp::io
