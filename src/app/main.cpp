// mnist_dist entry point: dispatches to a subcommand; without one it trains.
#include <cstring>

#include "app/commands.h"

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "train") == 0) return mnist_dist::run_train(argc - 1, argv + 1);
  if (argc > 1 && std::strcmp(argv[1], "predict") == 0) return mnist_dist::run_predict(argc - 1, argv + 1);
  if (argc > 1 && std::strcmp(argv[1], "export") == 0) return mnist_dist::run_export(argc - 1, argv + 1);
  if (argc > 1 && std::strcmp(argv[1], "plot") == 0) return mnist_dist::run_plot(argc - 1, argv + 1);
  return mnist_dist::run_train(argc, argv);
}
