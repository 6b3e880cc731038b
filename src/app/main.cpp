// mnist_dist entry point (app/commands.h).
#include "app/commands.h"

int main(int argc, char** argv) { return mnist_dist::run_main(argc, argv); }
