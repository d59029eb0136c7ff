#include <gtest/gtest.h>

#include "vardp/config/config.hpp"
#include "vardp/train/step_plan.hpp"
#include "vardp/util/error.hpp"

namespace vardp::train {
namespace {

config::Config dp_config(int64_t batch, int64_t epochs) {
  config::Config c;
  c.dp.enabled = true;
  c.train.batch_size = batch;
  c.train.epochs = epochs;
  return c;
}

TEST(StepPlan, DpSampleRateDefaultsToBatchOverNAndMustBeAProbability) {
  config::Config c = dp_config(128, 8);
  EXPECT_DOUBLE_EQ(dp_sample_rate(c, 1000), 0.128);
  c.dp.sample_rate = 0.05;
  EXPECT_DOUBLE_EQ(dp_sample_rate(c, 1000), 0.05);
  c.dp.sample_rate.reset();
  EXPECT_THROW(dp_sample_rate(c, 100), UsageError);  // 128 / 100 > 1
  c.dp.sample_rate = 0.0;
  EXPECT_THROW(dp_sample_rate(c, 1000), UsageError);
}

TEST(StepPlan, DpEpochsFollowOpacusAndExplicitStepsWin) {
  config::Config c = dp_config(128, 8);
  EXPECT_EQ(planned_steps(c, 1000), 62);  // int(8 / 0.128) = int(62.5): the demo's 62 lots
  c.dp.sample_rate = 0.04;
  c.train.epochs = 90;
  EXPECT_EQ(planned_steps(c, 1000), 2250);  // Opacus: int(90 / 0.04), not 90 // 0.04 = 2249
  c.train.steps = 7;
  EXPECT_EQ(planned_steps(c, 1000), 7);
}

TEST(StepPlan, PlainEpochsCountTheShortLastBatch) {
  config::Config c;
  c.train.batch_size = 64;
  c.train.epochs = 4;
  EXPECT_EQ(planned_steps(c, 30000), 4 * 469);  // ceil(30000 / 64) = 469: the pre-training's 1,876
  EXPECT_EQ(planned_steps(c, 1024), 4 * 16);
  c.train.epochs = 0;
  EXPECT_THROW(planned_steps(c, 1024), UsageError);
}

}  // namespace
}  // namespace vardp::train
