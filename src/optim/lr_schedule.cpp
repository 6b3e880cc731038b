// Learning-rate schedules (optim/lr_schedule.h).
#include "optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace mnist_dist {

const std::vector<std::string>& lr_schedule_names() {
  static const std::vector<std::string> names = {"constant", "step", "exponential", "cosine"};
  return names;
}

LrSchedule::LrSchedule(const LrScheduleConfig& config, double base_lr, int global_batch,
                       int64_t steps_per_epoch, int64_t total_steps)
    : cfg_(config), base_(base_lr) {
  if (std::find(lr_schedule_names().begin(), lr_schedule_names().end(), cfg_.kind) == lr_schedule_names().end())
    throw UserError("--lr-schedule " + cfg_.kind + ": use constant, step, exponential or cosine");
  if (cfg_.warmup_steps < 0) throw UserError("--warmup-steps must be 0 or more");
  if (cfg_.scale_reference_batch > 0) base_ = base_lr * global_batch / cfg_.scale_reference_batch;
  if (cfg_.kind == "step") {
    if (cfg_.step_size == 0) cfg_.step_size = std::max<int64_t>(1, steps_per_epoch);
    if (cfg_.step_size < 0) throw UserError("--lr-step-size must be positive");
    if (cfg_.gamma == 0.0) cfg_.gamma = 0.1;
  }
  if (cfg_.kind == "exponential" && cfg_.gamma == 0.0)
    throw UserError("--lr-schedule exponential needs --lr-gamma, the factor per optimizer step (e.g. 0.9995)");
  if (cfg_.gamma < 0.0 || !std::isfinite(cfg_.gamma)) throw UserError("--lr-gamma must be a positive number");
  if (cfg_.kind == "cosine") {
    horizon_ = total_steps - cfg_.warmup_steps;
    if (horizon_ < 1)
      throw UserError("--lr-schedule cosine: --warmup-steps " + std::to_string(cfg_.warmup_steps) +
                      " leaves no steps of the run's " + std::to_string(total_steps) + " to anneal over");
    if (!(cfg_.min_lr >= 0.0) || cfg_.min_lr > base_)
      throw UserError("--lr-min must be between 0 and the learning rate");
  }
}

double LrSchedule::at(int64_t step) const {
  const int64_t w = cfg_.warmup_steps;
  if (step < w) {  // LinearLR(start_factor = 1/W, end_factor = 1, total_iters = W)
    const double start = 1.0 / static_cast<double>(w);
    return base_ * (start + (1.0 - start) * static_cast<double>(step) / static_cast<double>(w));
  }
  const double t = static_cast<double>(step - w);
  if (cfg_.kind == "step")
    return base_ * std::pow(cfg_.gamma, static_cast<double>((step - w) / cfg_.step_size));
  if (cfg_.kind == "exponential") return base_ * std::pow(cfg_.gamma, t);
  if (cfg_.kind == "cosine") {
    if (step - w >= horizon_) return cfg_.min_lr;
    const double pi = std::acos(-1.0);
    return cfg_.min_lr + (base_ - cfg_.min_lr) * (1.0 + std::cos(pi * t / static_cast<double>(horizon_))) / 2.0;
  }
  return base_;
}

std::string LrSchedule::describe() const {
  char s[160];
  if (cfg_.kind == "step")
    std::snprintf(s, sizeof s, "lr %g, x%g every %lld steps", base_, cfg_.gamma, static_cast<long long>(cfg_.step_size));
  else if (cfg_.kind == "exponential")
    std::snprintf(s, sizeof s, "lr %g, x%g per step", base_, cfg_.gamma);
  else if (cfg_.kind == "cosine")
    std::snprintf(s, sizeof s, "lr %g, cosine to %g over %lld steps", base_, cfg_.min_lr, static_cast<long long>(horizon_));
  else
    std::snprintf(s, sizeof s, "lr %g", base_);
  std::string d = s;
  if (cfg_.warmup_steps > 0) d += " after " + std::to_string(cfg_.warmup_steps) + " linear warm-up steps";
  if (cfg_.scale_reference_batch > 0) d += " (scaled: global batch / " + std::to_string(cfg_.scale_reference_batch) + ")";
  return d;
}

}  // namespace mnist_dist
