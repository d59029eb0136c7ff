// A training run directory as input of other commands (merge, sample --run).
#pragma once
#include <string>

#include "vardp/config/config.hpp"
#include "vardp/train/run_model.hpp"

namespace vardp::app {

struct LoadedRun {
  config::Config config;   // DIR/config.toml
  std::string checkpoint;  // the file given, or the one `latest` names
  train::TrainedModel model;
};

// Reads DIR/config.toml and rebuilds the adapted model from `checkpoint` (empty: the latest).
LoadedRun load_run(const std::string& run_dir, const std::string& checkpoint);

}  // namespace vardp::app
