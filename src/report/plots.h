// The pictures of a run, drawn with gnuplot (Debian: gnuplot-nox, pngcairo terminal) from the
// files of the run directory: curves.png (metrics.jsonl), confusion.png (test_report.json),
// mistakes.png (mistakes.h5). `mnist_dist plot RUN_DIR` and the end of training both call this.
#pragma once

#include <string>
#include <vector>

namespace mnist_dist {

struct ImageSize {
  int width, height;
};
inline constexpr ImageSize kCurvesSize{960, 400};
inline constexpr ImageSize kConfusionSize{600, 560};
inline constexpr ImageSize kMistakesSize{648, 904};  // 3 px per image pixel + title
inline constexpr int kMistakesGrid = 6;  // 6 × 6 cells

// The gnuplot executable: $MNIST_DIST_GNUPLOT if set (a path; empty or missing = none), else
// `gnuplot` on PATH. Empty when there is none.
std::string find_gnuplot();

struct PlotOutcome {
  std::vector<std::string> written;  // paths of the PNGs drawn
  std::vector<std::string> skipped;  // "confusion.png: no test_report.json" ...
};

// Draws every picture whose input file exists in run_dir. Each PNG is written to a temporary
// name and renamed. UserError when run_dir is not a run directory (no metrics.jsonl), when
// gnuplot is empty, or when gnuplot fails (with its message).
PlotOutcome render_plots(const std::string& run_dir, const std::string& gnuplot);

}  // namespace mnist_dist
