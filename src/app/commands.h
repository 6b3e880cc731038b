// The subcommands of the mnist_dist executable; each parses its own flags and returns the
// process exit code (0 ok, 1 internal error, 2 bad input).
#pragma once

namespace mnist_dist {

int run_train(int argc, char** argv);  // the default: `mnist_dist [train] --data DIR ...`

}  // namespace mnist_dist
