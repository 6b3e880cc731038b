// mnist_dist entry point: dispatches to a subcommand; without one it trains.
#include <cstring>

#include "app/commands.h"

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "train") == 0) return mnist_dist::run_train(argc - 1, argv + 1);
  return mnist_dist::run_train(argc, argv);
}
