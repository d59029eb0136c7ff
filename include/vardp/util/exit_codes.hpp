#pragma once

namespace vardp {
// Documented process exit codes (README "Exit codes").
constexpr int kExitSuccess = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
// A checkpoint was written because of a signal or the wall-time limit: requeue the job.
constexpr int kExitRequeue = 75;
}  // namespace vardp
