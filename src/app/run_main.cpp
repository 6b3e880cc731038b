// Subcommand dispatch of the mnist_dist command line (app/commands.h).
#include <cstring>

#include "app/commands.h"

namespace mnist_dist {

int run_main(int argc, char** argv, StepHook* hook) {
  if (argc > 1 && std::strcmp(argv[1], "train") == 0) return run_train(argc - 1, argv + 1, hook);
  if (argc > 1 && std::strcmp(argv[1], "predict") == 0) return run_predict(argc - 1, argv + 1);
  if (argc > 1 && std::strcmp(argv[1], "export") == 0) return run_export(argc - 1, argv + 1);
  if (argc > 1 && std::strcmp(argv[1], "plot") == 0) return run_plot(argc - 1, argv + 1);
  return run_train(argc, argv, hook);
}

}  // namespace mnist_dist
