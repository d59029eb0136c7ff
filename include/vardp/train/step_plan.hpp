// How many steps a run takes and, for DP, at which sample rate: one definition for the trainer
// and for `vardp profile`, so the profile's prediction is the run's plan.
#pragma once
#include <cstdint>

#include "vardp/config/config.hpp"

namespace vardp::train {

// DP: the Poisson sample rate q of a run over N training examples: dp.sample_rate, by default
// train.batch_size / N. Throws UsageError unless 0 < q <= 1. Privacy argument: this one q is
// what the lot sampler draws with, what the accountant composes over planned_steps (invariant 4)
// and what the update is normalised by (q N, invariant 3).
double dp_sample_rate(const config::Config& cfg, int64_t num_examples);

// train.steps when set; otherwise train.epochs as DP steps at rate q (dp::steps_from_epochs) or
// as plain epochs of steps_per_epoch(N, batch_size) steps. Throws UsageError when that is 0.
int64_t planned_steps(const config::Config& cfg, int64_t num_examples);

}  // namespace vardp::train
