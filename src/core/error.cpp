// The single fatal path: one message with rank and host, then the job-wide abort.
#include "core/error.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace mnist_dist {
namespace {
int g_rank = 0;              // set once at start-up, read only on the error paths
int g_size = 1;
AbortHook g_abort = nullptr;  // MPI_Abort when running under MPI

std::string host_name() {
  char host[256] = "?";
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  return host;
}
}  // namespace

void set_fatal_context(int rank, int size, AbortHook hook) {
  g_rank = rank;
  g_size = size;
  g_abort = hook;
}

int exit_code_for(const std::exception& e) {
  if (dynamic_cast<const UserError*>(&e) != nullptr) return kExitUsage;
  if (dynamic_cast<const NoSpaceError*>(&e) != nullptr) return kExitNoSpace;
  if (dynamic_cast<const TrainingDiverged*>(&e) != nullptr) return kExitDiverged;
  return kExitInternal;
}

int run_reporting_errors(const std::string& prog, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    const int code = exit_code_for(e);
    const char* kind = code == kExitInternal ? "internal error" : "error";
    if (g_size > 1 && g_abort != nullptr) {
      std::fprintf(stderr, "%s: [rank %d/%s] %s: %s\n", prog.c_str(), g_rank, host_name().c_str(), kind, e.what());
      std::fflush(stderr);
      g_abort(code);
    }
    std::fprintf(stderr, "%s: %s: %s\n", prog.c_str(), kind, e.what());
    return code;
  }
}

void fatal(const std::string& what, const char* file, int line) { fatal(what, kExitInternal, file, line); }

void fatal(const std::string& what, int exit_code, const char* file, int line) {
  std::fprintf(stderr, "[rank %d/%s] fatal: %s (%s:%d)\n", g_rank, host_name().c_str(), what.c_str(), file, line);
  std::fflush(stderr);
  if (g_abort != nullptr) g_abort(exit_code);
  std::_Exit(exit_code);
}

}  // namespace mnist_dist
