// Learning-rate schedules (optim/lr_schedule.h) against torch.optim.lr_scheduler, value for
// value over every step (lr_schedule_golden.inc, written by lr_schedule_golden.py with
// PyTorch), plus the linear scaling rule by hand, the defaults and the refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "optim/lr_schedule.h"

namespace mnist_dist {
namespace {

struct Golden {
  const char* name;
  const char* kind;
  int64_t warmup_steps, step_size;
  double gamma, min_lr;
  double base;
  int64_t total;
  std::vector<double> lr;
};

const std::vector<Golden>& golden() {
  static const std::vector<Golden> g = {
#include "lr_schedule_golden.inc"
  };
  return g;
}

TEST(LrSchedule, EveryStepMatchesPyTorch) {
  ASSERT_GE(golden().size(), 7u);
  for (const Golden& c : golden()) {
    LrScheduleConfig config;
    config.kind = c.kind;
    config.warmup_steps = c.warmup_steps;
    config.step_size = c.step_size;
    config.gamma = c.gamma;
    config.min_lr = c.min_lr;
    const LrSchedule s(config, c.base, 128, 1000, c.total);
    ASSERT_EQ(static_cast<int64_t>(c.lr.size()), c.total) << c.name;
    for (size_t t = 0; t < c.lr.size(); ++t)
      EXPECT_NEAR(s.at(static_cast<int64_t>(t)), c.lr[t], 1e-12 * c.base) << c.name << " step " << t;
  }
}

TEST(LrSchedule, ConstantIsTheFlagValueBitForBit) {
  const float lr = 1e-3f;
  const LrSchedule s(LrScheduleConfig{}, lr, 128, 100, 1000);
  EXPECT_TRUE(s.constant());
  for (int64_t t : {0, 1, 99, 100000}) EXPECT_EQ(static_cast<float>(s.at(t)), lr);
}

TEST(LrSchedule, LinearScalingRuleAndDefaults) {
  LrScheduleConfig c;
  c.scale_reference_batch = 256;
  EXPECT_DOUBLE_EQ(LrSchedule(c, 0.001, 1024, 10, 100).at(5), 0.004);  // 0.001 x 1024 / 256
  c = LrScheduleConfig{};
  c.kind = "step";  // step_size 0 = one epoch (10 steps), gamma 0.1
  const LrSchedule s(c, 0.01, 128, 10, 100);
  EXPECT_DOUBLE_EQ(s.at(9), 0.01);
  EXPECT_NEAR(s.at(10), 0.001, 1e-15);
  c.kind = "cosine";  // past its horizon it stays at the minimum (PyTorch would rise again)
  c.min_lr = 1e-4;
  const LrSchedule cos(c, 0.01, 128, 10, 20);
  EXPECT_DOUBLE_EQ(cos.at(20), 1e-4);
  EXPECT_DOUBLE_EQ(cos.at(500), 1e-4);
}

TEST(LrSchedule, RefusesSettingsThatCannotWork) {
  LrScheduleConfig c;
  c.kind = "exponential";
  EXPECT_THROW(LrSchedule(c, 0.01, 128, 10, 100), UserError);  // no gamma
  c.kind = "cosine";
  c.warmup_steps = 100;
  EXPECT_THROW(LrSchedule(c, 0.01, 128, 10, 100), UserError);  // nothing left to anneal
  c.warmup_steps = 0;
  c.min_lr = 0.1;
  EXPECT_THROW(LrSchedule(c, 0.01, 128, 10, 100), UserError);  // min above lr
  c = LrScheduleConfig{};
  c.kind = "linear";
  EXPECT_THROW(LrSchedule(c, 0.01, 128, 10, 100), UserError);
}

}  // namespace
}  // namespace mnist_dist
