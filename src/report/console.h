// Console output of a run on rank 0: per-epoch lines (Keras-like) and the final test lines.
// The final "Test accuracy: 0.XXXX" line is printed even with --quiet.
#pragma once

#include "train/observer.h"
#include "train/trainer.h"

namespace mnist_dist {

class ConsoleObserver final : public TrainObserver {
 public:
  explicit ConsoleObserver(bool quiet = false) : quiet_(quiet) {}
  void on_train_begin(const TrainConfig& config, const RunInfo&) override { epochs_ = config.epochs; }
  void on_epoch_end(const EpochMetrics& m) override;
  void on_train_end(const TrainResult& r) override;

 private:
  bool quiet_;
  int epochs_ = 0;
};

}  // namespace mnist_dist
