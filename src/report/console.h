// Console output of a run on rank 0: a live Keras-style progress bar on a terminal, plain lines
// (every --log-every steps and per epoch, no control characters) otherwise, nothing but the
// final "Test loss/accuracy" lines with --quiet.
#pragma once

#include <cstdio>
#include <string>

#include "train/observer.h"
#include "train/trainer.h"

namespace mnist_dist {

enum class ProgressMode {
  kBar,    // terminal: one line per epoch redrawn with '\r', then the epoch summary
  kLines,  // pipes, files, Slurm logs: whole lines only
  kQuiet,  // only the final test lines
};

// `choice`: "bar", "lines" or "auto" — the bar when `out` is a terminal and the process was not
// started by a launcher (mpirun and srun hand ranks a pseudo-terminal even when their own
// output goes to a file or a Slurm log). kQuiet when quiet.
ProgressMode progress_mode_for(const std::string& choice, std::FILE* out, bool quiet, bool under_launcher);

// The progress interval the trainer should use (TrainConfig::progress_every): every step for the
// live bar (redraws are throttled here), every `log_every` steps otherwise. It drives a
// collective, so every rank must use the same value: decide the mode on rank 0 and broadcast it.
int progress_interval(ProgressMode mode, int log_every);

// "3s", "1:05", "1:02:03" (Keras's ETA style); "45ms" / "250us" for per-step times.
std::string format_eta(double seconds);
std::string format_step_time(double seconds);

class ConsoleObserver final : public TrainObserver {
 public:
  // width: terminal columns for the bar (0: ask the terminal, 80 if it does not say).
  explicit ConsoleObserver(ProgressMode mode = ProgressMode::kLines, int log_every = 100,
                           std::FILE* out = stdout, int width = 0);
  void on_train_begin(const TrainConfig& config, const RunInfo&) override;
  void on_progress(const Progress& p) override;
  void on_epoch_end(const EpochMetrics& m) override;
  void on_train_end(const TrainResult& r) override;

  // The bar line for a progress state, fitted into `columns` (exposed for tests).
  static std::string bar_line(const Progress& p, int columns);

 private:
  void draw(const std::string& line);  // '\r' + line, padded over the previous one
  int columns() const;

  ProgressMode mode_;
  int log_every_;
  std::FILE* out_;
  int width_;
  int epochs_ = 0;
  bool evaluate_ = true;
  int header_epoch_ = 0;        // last epoch whose "Epoch i/N" header was printed (bar mode)
  size_t last_len_ = 0;         // length of the line currently on screen (bar mode)
  double last_draw_ = -1.0;     // Progress::seconds of the last redraw
};

}  // namespace mnist_dist
