// The single fatal path: one message with rank and host, then the job-wide abort.
#include "core/error.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace mnist_dist {
namespace {
int g_rank = 0;              // set once at start-up, read only on the fatal path
AbortHook g_abort = nullptr;  // MPI_Abort when running under MPI
}  // namespace

void set_fatal_context(int rank, AbortHook hook) {
  g_rank = rank;
  g_abort = hook;
}

void fatal(const std::string& what, const char* file, int line) {
  char host[256] = "?";
  gethostname(host, sizeof host - 1);
  std::fprintf(stderr, "[rank %d/%s] fatal: %s (%s:%d)\n", g_rank, host, what.c_str(), file, line);
  std::fflush(stderr);
  if (g_abort != nullptr) g_abort(kExitInternal);
  std::_Exit(kExitInternal);
}

}  // namespace mnist_dist
