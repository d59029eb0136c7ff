// Preemption: SIGUSR1 / SIGTERM (Slurm's --signal and scancel) and a wall-time limit turn into a
// stop request that all ranks agree on at the next step boundary, so they checkpoint the same
// step and exit 75 ("requeue me") together.
#pragma once
#include <chrono>
#include <string>

#include "vardp/dist/comm.hpp"

namespace vardp::train {

// Installs handlers for SIGUSR1 and SIGTERM that only set a flag (async-signal-safe).
void install_stop_signal_handlers();
// The signal received since installation (0 if none); clear_stop_signal() resets it (tests).
int received_stop_signal();
void clear_stop_signal();

class StopPolicy {
 public:
  // max_hours <= 0: no wall-time limit. The limit is checked against the time since construction
  // plus a safety margin for writing the checkpoint (the longest step seen so far, doubled).
  explicit StopPolicy(double max_hours);
  // Collective: true on every rank if any rank got a signal or is past its wall-time budget.
  // Call once per step boundary on every rank. `last_step_seconds` feeds the safety margin.
  bool should_stop(dist::Comm& comm, double last_step_seconds);
  // Why the last should_stop() returned true: "SIGUSR1", "SIGTERM", "wall time", "another rank".
  const std::string& reason() const { return reason_; }

 private:
  double max_seconds_;
  double longest_step_ = 0.0;
  std::chrono::steady_clock::time_point start_;
  std::string reason_;
};

}  // namespace vardp::train
