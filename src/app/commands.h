// The subcommands of the mnist_dist executable; each parses its own flags and returns the
// process exit code (0 ok, 1 internal error, 2 bad input).
#pragma once

namespace mnist_dist {

class StepHook;

// The whole command line: dispatches to a subcommand; without one it trains. `hook` goes to the
// trainer (tests' fault injection; null in mnist_dist).
int run_main(int argc, char** argv, StepHook* hook = nullptr);

// the default: `mnist_dist [train] --data DIR ...`
int run_train(int argc, char** argv, StepHook* hook = nullptr);
int run_predict(int argc, char** argv);  // `mnist_dist predict --checkpoint PATH IMAGE...`
int run_export(int argc, char** argv);   // `mnist_dist export --checkpoint PATH --onnx FILE`
int run_plot(int argc, char** argv);     // `mnist_dist plot RUN_DIR`

}  // namespace mnist_dist
