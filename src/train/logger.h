// The one logger: only rank 0 prints results (stdout) and notices (stderr); other ranks are
// silent. Messages are whole lines, flushed at once (Slurm logs, pipes).
#pragma once

#include <cstdarg>
#include <cstdio>

namespace mnist_dist {

class Logger {
 public:
  explicit Logger(int rank, bool quiet = false) : enabled_(rank == 0), quiet_(quiet) {}
  bool enabled() const { return enabled_; }

  // A result line on stdout (printf-style).
  void info(const char* fmt, ...) const __attribute__((format(printf, 2, 3))) {
    if (!enabled_ || quiet_) return;
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stdout, fmt, ap);
    va_end(ap);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  // Always printed by rank 0 even when quiet (final results).
  void result(const char* fmt, ...) const __attribute__((format(printf, 2, 3))) {
    if (!enabled_) return;
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stdout, fmt, ap);
    va_end(ap);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  // A notice on stderr ("mnist_dist: note: ...").
  void notice(const char* fmt, ...) const __attribute__((format(printf, 2, 3))) {
    if (!enabled_) return;
    va_list ap;
    va_start(ap, fmt);
    std::fputs("mnist_dist: ", stderr);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  bool enabled_;
  bool quiet_;
};

}  // namespace mnist_dist
