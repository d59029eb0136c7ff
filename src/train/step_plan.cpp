#include "vardp/train/step_plan.hpp"

#include "vardp/dp/accountant_types.hpp"
#include "vardp/train/work_split.hpp"
#include "vardp/util/error.hpp"

namespace vardp::train {

double dp_sample_rate(const config::Config& cfg, int64_t num_examples) {
  const double q = cfg.dp.sample_rate ? *cfg.dp.sample_rate
                                      : static_cast<double>(cfg.train.batch_size) / static_cast<double>(num_examples);
  if (!(q > 0 && q <= 1))
    throw UsageError(str("sample rate q = ", q, " must be in (0, 1] (dp.sample_rate or train.batch_size / N)"),
                     "dp.sample_rate");
  return q;
}

int64_t planned_steps(const config::Config& cfg, int64_t num_examples) {
  int64_t steps = cfg.train.steps;
  if (steps <= 0)
    steps = cfg.dp.enabled
                ? dp::steps_from_epochs(static_cast<double>(cfg.train.epochs), dp_sample_rate(cfg, num_examples))
                : cfg.train.epochs * steps_per_epoch(num_examples, cfg.train.batch_size);
  if (steps <= 0) throw UsageError("the run has no steps (set train.steps or train.epochs)", "train");
  return steps;
}

}  // namespace vardp::train
