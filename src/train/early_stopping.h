// Early stopping on a validation metric with the best weights kept (Keras' EarlyStopping with
// restore_best_weights): after each epoch the monitored value either improves on the best so
// far by more than min_delta (val_loss down, val_accuracy up) or adds one to the wait; training
// stops once the wait reaches the patience. Pure logic; the trainer keeps the weights.
#pragma once

#include <string>
#include <vector>

namespace mnist_dist {

class ParamArena;

struct EarlyStoppingConfig {
  int patience = 0;                  // epochs without improvement before stopping; 0: off
  std::string monitor = "val_loss";  // val_loss | val_accuracy
  double min_delta = 0.0;            // an improvement must exceed this
};

class EarlyStopping {
 public:
  explicit EarlyStopping(const EarlyStoppingConfig& config);

  bool enabled() const { return cfg_.patience > 0; }
  // The epoch's (1-based) validation loss and accuracy; true when it is the new best.
  bool observe(int epoch, double val_loss, double val_accuracy);
  bool should_stop() const { return enabled() && wait_ >= cfg_.patience; }
  int best_epoch() const { return best_epoch_; }  // 0: none yet
  double best() const { return best_; }
  const std::string& monitor() const { return cfg_.monitor; }

 private:
  EarlyStoppingConfig cfg_;
  double best_ = 0.0;
  int best_epoch_ = 0;
  int wait_ = 0;
};

// A host copy of an arena's parameters and state (the best epoch's weights).
class BestWeights {
 public:
  void keep(ParamArena& arena);     // backend → host copy
  void restore(ParamArena& arena);  // host copy → the arena (host and backend memory)
  bool empty() const { return params_.empty(); }

 private:
  std::vector<float> params_, state_;
};

}  // namespace mnist_dist
