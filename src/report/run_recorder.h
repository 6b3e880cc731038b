// RunRecorder: the observer that fills the run directory on rank 0 — config.json at the start,
// metrics.jsonl / metrics.csv as the run goes (a step record every --log-every steps, an epoch
// record per epoch, a test record), test_report.json + mistakes.h5 after the test evaluation,
// and the pictures (plots.h) at the end. Missing gnuplot is said once and is not an error.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "train/logger.h"
#include "train/observer.h"
#include "train/trainer.h"

namespace mnist_dist {

struct RunRecorderOptions {
  std::string run_dir;                   // empty: runs/<timestamp>
  int log_every = 100;                   // steps (of the epoch) between step records
  bool plots = true;                     // draw the PNGs at the end
  std::vector<std::string> command_line;  // argv, for config.json
  std::vector<std::pair<std::string, std::string>> flags;  // every flag's value (given or default)
};

// The columns of metrics.csv, in order (metrics.jsonl uses the same names).
const std::vector<std::string>& metrics_columns();

class RunRecorder final : public TrainObserver {
 public:
  RunRecorder(RunRecorderOptions options, const Logger& log);
  void on_train_begin(const TrainConfig& config, const RunInfo& info) override;
  void on_progress(const Progress& p) override;
  void on_epoch_end(const EpochMetrics& m) override;
  void on_test(const EvalResult& r, const std::vector<int32_t>& predictions, const SplitData& test) override;
  void on_train_end(const TrainResult& r) override;

  const std::string& dir() const { return dir_; }  // set by on_train_begin

 private:
  // One record to both metrics files: (column, JSON-literal value) pairs, missing = empty cell.
  void record(const std::vector<std::pair<std::string, std::string>>& fields, int64_t global_step);
  // A resumed run continuing an existing run directory: drops the records from global_step on
  // (and the old test record), which this run recomputes.
  void drop_records_from(int64_t global_step);

  RunRecorderOptions opt_;
  const Logger& log_;
  TrainConfig config_;
  std::string dir_;
  int rows_ = 28, cols_ = 28, classes_ = 10;
  int64_t global_step_ = 0;   // of the latest progress event
  bool continuing_ = false;  // appending to the metrics of an earlier attempt (resume)
  int last_epoch_ = 0;
};

}  // namespace mnist_dist
