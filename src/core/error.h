// Error reporting: user errors (exit 2) vs internal failures (exit 1), and the one fatal path.
// Checks are plain functions or do { } while (0) macros; none hides a return.
#pragma once

#include <exception>
#include <functional>
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

// Non-finite loss: training stops at that step, no checkpoint of the bad weights is written.
// Exit kExitDiverged.
class TrainingDiverged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Exit codes shared by every executable (3: train/stop_signal.h).
inline constexpr int kExitOk = 0;
inline constexpr int kExitInternal = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitDiverged = 4;
inline constexpr int kExitNoSpace = 5;
// The watchdog (--timeout): no progress for that long, a peer rank or node was lost or the job hangs.
inline constexpr int kExitNoProgress = 6;

// The exit code of an error: UserError kExitUsage, NoSpaceError kExitNoSpace, TrainingDiverged
// kExitDiverged, anything else kExitInternal.
int exit_code_for(const std::exception& e);

// Runs a command's body and returns its exit code. An exception becomes one line on stderr,
// "PROG: error: WHAT" ("PROG: internal error: WHAT" for kExitInternal), and exit_code_for's
// code. In a job of several ranks (set_fatal_context with size > 1) the line names the rank and
// host, "PROG: [rank R/HOST] error: WHAT", and the whole job ends with that code.
int run_reporting_errors(const std::string& prog, const std::function<int()>& body);

// Prints "[rank r/host] fatal: <what> (file:line)" to stderr and ends the whole job.
// When a communicator with an abort hook is installed (MPI), it is used; otherwise exit(1).
[[noreturn]] void fatal(const std::string& what, const char* file, int line);
// The same with another exit code than kExitInternal (the watchdog's kExitNoProgress).
[[noreturn]] void fatal(const std::string& what, int exit_code, const char* file, int line);

// Installs the job-wide abort hook (e.g. MPI_Abort), the rank shown in fatal messages and the
// job's number of ranks.
using AbortHook = void (*)(int exit_code);
void set_fatal_context(int rank, int size, AbortHook hook);

// A check for internal invariants: on failure, fatal() with the condition's text.
#define MD_CHECK(cond, msg)                                                          \
  do {                                                                               \
    if (!(cond)) ::mnist_dist::fatal(std::string("check failed: " #cond ": ") + (msg), \
                                     __FILE__, __LINE__);                            \
  } while (0)

}  // namespace mnist_dist
