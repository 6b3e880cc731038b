// `mnist_dist plot RUN_DIR`: (re)draws curves.png, confusion.png and mistakes.png of a run
// directory from its metrics.jsonl, test_report.json and mistakes.h5, with gnuplot.
#include <cstdio>
#include <exception>

#include "app/commands.h"
#include "core/cli.h"
#include "core/error.h"
#include "report/plots.h"

namespace mnist_dist {

int run_plot(int argc, char** argv) {
  std::string run_dir;
  CLI::App app{"mnist_dist plot: draws the pictures of a run directory (curves.png, confusion.png,\n"
               "mistakes.png) from its metrics.jsonl, test_report.json and mistakes.h5, with gnuplot\n"
               "(Debian: apt-get install gnuplot-nox).",
               "mnist_dist plot"};
  app.add_option("run_dir", run_dir, "A run directory written by training (--run-dir, default runs/<time>)")
      ->required();
  app.footer("Example:\n  mnist_dist plot runs/20261129-140312\n"
             "Exit codes: 0 success, 1 internal error, 2 bad input (no run directory, no gnuplot).");
  if (auto code = parse_command_line(app, argc, argv)) return *code;
  return run_reporting_errors("mnist_dist plot", [&] {
    const PlotOutcome out = render_plots(run_dir, find_gnuplot());
    for (const auto& w : out.written) std::printf("wrote %s\n", w.c_str());
    for (const auto& s : out.skipped) std::fprintf(stderr, "mnist_dist plot: skipped %s\n", s.c_str());
    return kExitOk;
  });
}

}  // namespace mnist_dist
