// Watchdog thread: wakes every second, compares the last heartbeat with the timeout.
#include "train/watchdog.h"

#include <chrono>
#include <cstdio>

#include "core/error.h"

namespace mnist_dist {
namespace {
long long now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Watchdog::Watchdog(double timeout_s) : timeout_s_(timeout_s), last_ns_(now_ns()), where_("start") {
  if (timeout_s_ > 0) thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::beat(const char* where) {
  last_ns_.store(now_ns(), std::memory_order_relaxed);
  where_.store(where, std::memory_order_relaxed);
}

void Watchdog::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(250));
    if (stop_) return;
    const double idle = static_cast<double>(now_ns() - last_ns_.load()) * 1e-9;
    if (idle > timeout_s_) {
      char msg[256];
      std::snprintf(msg, sizeof msg,
                    "no progress for %.0f s (last: %s): a peer rank died or the job hangs; "
                    "ending the job (--timeout)",
                    idle, where_.load());
      fatal(msg, kExitNoProgress, __FILE__, __LINE__);
    }
  }
}

}  // namespace mnist_dist
