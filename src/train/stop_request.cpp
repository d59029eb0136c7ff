#include "vardp/train/stop_request.hpp"

#include <algorithm>
#include <csignal>

namespace vardp::train {
namespace {
volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_stop_signal(int sig) { g_signal = sig; }
}  // namespace

void install_stop_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // interrupted system calls (file I/O) resume
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int received_stop_signal() { return g_signal; }
void clear_stop_signal() { g_signal = 0; }

StopPolicy::StopPolicy(double max_hours)
    : max_seconds_(max_hours > 0 ? max_hours * 3600.0 : 0.0), start_(std::chrono::steady_clock::now()) {}

bool StopPolicy::should_stop(dist::Comm& comm, double last_step_seconds) {
  longest_step_ = std::max(longest_step_, last_step_seconds);
  std::string local;
  if (int sig = received_stop_signal()) {
    local = sig == SIGUSR1 ? "SIGUSR1" : sig == SIGTERM ? "SIGTERM" : "signal " + std::to_string(sig);
  } else if (max_seconds_ > 0) {
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    // Stop while there is still time for one more step and the checkpoint.
    if (elapsed + 2.0 * longest_step_ + 30.0 >= max_seconds_) local = "wall time";
  }
  bool stop = comm.any_flag(!local.empty());
  if (stop) reason_ = local.empty() ? "another rank" : local;
  return stop;
}

}  // namespace vardp::train
