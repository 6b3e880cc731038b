// Training events for everything that watches a run without changing it: progress output,
// metrics files, reports (rank 0 only). Values are already reduced over ranks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/evaluator.h"

namespace mnist_dist {

struct TrainConfig;
struct EpochMetrics;
struct TrainResult;

struct RunInfo {
  int world = 1, nodes = 1, ranks_per_node = 1, threads = 1;
  std::string device = "cpu", comm = "single-process";
  size_t train = 0, val = 0, test = 0;   // samples per split
  size_t steps_per_epoch = 0;
  size_t trainable_parameters = 0;
};

// Running averages over the epoch so far, reduced over ranks.
struct Progress {
  int epoch = 0;                 // 1-based
  size_t step = 0;               // steps done in this epoch
  size_t steps_per_epoch = 0;
  int64_t global_step = 0;
  double loss = 0.0, accuracy = 0.0;
  double seconds = 0.0;          // since the epoch started
};

class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual void on_train_begin(const TrainConfig&, const RunInfo&) {}
  // Every progress interval (TrainConfig::progress_every steps) and at the epoch's last step.
  virtual void on_progress(const Progress&) {}
  virtual void on_epoch_end(const EpochMetrics&) {}
  // The test split's evaluation: per-sample predictions and the data they came from.
  virtual void on_test(const EvalResult&, const std::vector<int32_t>& predictions,
                       const SplitData& test) {
    (void)predictions;
    (void)test;
  }
  virtual void on_train_end(const TrainResult&) {}
};

}  // namespace mnist_dist
