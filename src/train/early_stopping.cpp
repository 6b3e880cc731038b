// Early stopping (train/early_stopping.h).
#include "train/early_stopping.h"

#include <algorithm>

#include "core/error.h"
#include "layers/param_arena.h"

namespace mnist_dist {

EarlyStopping::EarlyStopping(const EarlyStoppingConfig& config) : cfg_(config) {
  if (cfg_.monitor != "val_loss" && cfg_.monitor != "val_accuracy")
    throw UserError("--monitor " + cfg_.monitor + ": use val_loss or val_accuracy");
  if (cfg_.patience < 0) throw UserError("--early-stopping must be 0 (off) or a number of epochs");
  if (!(cfg_.min_delta >= 0.0)) throw UserError("--min-delta must be 0 or more");
}

bool EarlyStopping::observe(int epoch, double val_loss, double val_accuracy) {
  const bool loss = cfg_.monitor == "val_loss";
  const double value = loss ? val_loss : val_accuracy;
  const bool better = best_epoch_ == 0 || (loss ? value < best_ - cfg_.min_delta : value > best_ + cfg_.min_delta);
  if (better) {
    best_ = value;
    best_epoch_ = epoch;
    wait_ = 0;
  } else {
    ++wait_;
  }
  return better;
}

void BestWeights::keep(ParamArena& arena) {
  arena.sync_to_host();
  params_.assign(arena.host_params(), arena.host_params() + arena.param_count());
  state_.assign(arena.host_state(), arena.host_state() + arena.state_count());
}

void BestWeights::restore(ParamArena& arena) {
  MD_CHECK(params_.size() == arena.param_count() && state_.size() == arena.state_count(),
           "best weights of another arena");
  std::copy(params_.begin(), params_.end(), arena.host_params());
  std::copy(state_.begin(), state_.end(), arena.host_state());
  arena.sync_to_device();
}

}  // namespace mnist_dist
