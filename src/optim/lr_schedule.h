// Learning-rate schedules: the LR of optimizer step t (0-based, global) as a pure function of t
// and the settings, so resuming and the world size never change it. The semantics are
// PyTorch's, checked value for value against torch.optim.lr_scheduler
// (tests/unit/test_lr_schedule.cpp):
//   constant      lr
//   step          lr · gamma^⌊t / step_size⌋                        (StepLR)
//   exponential   lr · gamma^t                                       (ExponentialLR)
//   cosine        min + (lr − min)·(1 + cos(π·t / T))/2, t ≤ T, then min  (CosineAnnealingLR)
// With warm-up W > 0 the first W steps rise linearly from lr/W (LinearLR(start_factor=1/W,
// total_iters=W)) and the schedule above starts at step W with t − W (SequentialLR, milestone
// W); a cosine's T is then the steps after the warm-up. lr itself may be scaled by the linear
// scaling rule: lr · global batch / reference batch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mnist_dist {

struct LrScheduleConfig {
  std::string kind = "constant";  // constant | step | exponential | cosine
  int64_t warmup_steps = 0;
  int64_t step_size = 0;          // step: optimizer steps between decays (0: one epoch)
  double gamma = 0.0;             // step (default 0.1) / exponential (required): the factor
  double min_lr = 0.0;            // cosine: the LR it anneals to
  int scale_reference_batch = 0;  // > 0: lr × global batch / this (linear scaling rule)
};

const std::vector<std::string>& lr_schedule_names();

class LrSchedule {
 public:
  // base_lr: --lr. steps_per_epoch and total_steps (the run's optimizer steps from step 0)
  // fill the defaults (a step schedule's step_size, a cosine's horizon). UserError for settings
  // that cannot work (exponential without gamma, a warm-up as long as the run for cosine, …).
  LrSchedule(const LrScheduleConfig& config, double base_lr, int global_batch, int64_t steps_per_epoch,
             int64_t total_steps);

  double at(int64_t step) const;
  double base() const { return base_; }  // after the scaling rule
  bool constant() const { return cfg_.kind == "constant" && cfg_.warmup_steps == 0; }
  // "cosine to 1e-05 over 3500 steps after 500 warm-up steps" (the start line).
  std::string describe() const;

 private:
  LrScheduleConfig cfg_;
  double base_ = 0.0;
  int64_t horizon_ = 0;  // cosine: T
};

}  // namespace mnist_dist
