#include "app/run_dir.hpp"

#include "app/config_loader.hpp"

namespace vardp::app {

LoadedRun load_run(const std::string& run_dir, const std::string& checkpoint) {
  ConfigSources src;
  src.file = run_dir + "/config.toml";
  LoadedRun r;
  r.config = load_config(src);
  r.checkpoint = checkpoint.empty() ? train::latest_checkpoint(run_dir) : checkpoint;
  r.model = train::load_trained_model(r.config, r.checkpoint);
  return r;
}

}  // namespace vardp::app
