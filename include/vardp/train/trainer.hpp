// The training job (`vardp train`): a VAR adapted by [adapt] on the dataset of [data], plain or
// DP-SGD ([dp]), over the ranks of a communicator ([dist]), with checkpoints, resume and
// preemption ([output]). See docs/formats/run.md for the run directory it writes.
#pragma once
#include <string>

#include "vardp/config/config.hpp"
#include "vardp/dist/comm.hpp"

namespace vardp::train {

struct TrainRequest {
  config::Config config;
  std::string resolved_toml;    // stored in every output file
  std::string resume = "auto";  // auto: continue from `latest` if present; never: start fresh
  bool dry_run = false;         // build models, print parameter counts and the plan, no training
};

struct TrainOutcome {
  int exit_code = 0;        // 0 finished, 75 stopped for requeue (checkpoint written)
  int64_t steps_done = 0;   // completed optimizer steps
  double final_loss = 0.0;  // mean training loss of the last logged interval
  double epsilon = 0.0;     // spent epsilon (DP)
};

// Collective over `comm`: every rank calls it with the same request.
TrainOutcome run_training(dist::Comm& comm, const TrainRequest& request);

}  // namespace vardp::train
