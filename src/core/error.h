// Error reporting: user errors (exit 2) vs internal failures (exit 1), and the one fatal path.
// Checks are plain functions or do { } while (0) macros; none hides a return.
#pragma once

#include <stdexcept>
#include <string>

namespace mnist_dist {

// Bad input from the user (path, flag, file contents). main() prints it on one line, exit 2.
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An output file could not be written for lack of space (ENOSPC, EDQUOT): the message names the
// file, the bytes needed and the bytes free; the partial file has been removed. Exit kExitNoSpace.
class NoSpaceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Exit codes shared by every executable (3 and 4: train/stop_signal.h, train/trainer.h).
inline constexpr int kExitOk = 0;
inline constexpr int kExitInternal = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNoSpace = 5;

// Prints "[rank r/host] fatal: <what> (file:line)" to stderr and ends the whole job.
// When a communicator with an abort hook is installed (MPI), it is used; otherwise exit(1).
[[noreturn]] void fatal(const std::string& what, const char* file, int line);

// Installs the job-wide abort hook (e.g. MPI_Abort) and the rank shown in fatal messages.
using AbortHook = void (*)(int exit_code);
void set_fatal_context(int rank, AbortHook hook);

// A check for internal invariants: on failure, fatal() with the condition's text.
#define MD_CHECK(cond, msg)                                                          \
  do {                                                                               \
    if (!(cond)) ::mnist_dist::fatal(std::string("check failed: " #cond ": ") + (msg), \
                                     __FILE__, __LINE__);                            \
  } while (0)

}  // namespace mnist_dist
