// Watchdog against hangs: if the step loop makes no progress for `timeout` seconds (a peer
// rank died without the launcher noticing, a collective that never completes), it prints
// which rank and where it was, then ends the job through the fatal path with exit code
// kExitNoProgress (6). Heartbeats are cheap (one atomic store).
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace mnist_dist {

class Watchdog {
 public:
  // timeout_s <= 0 disables it.
  explicit Watchdog(double timeout_s);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Marks progress; `where` (a string literal) names the phase for the message.
  void beat(const char* where);

 private:
  void run();
  double timeout_s_;
  std::atomic<long long> last_ns_;
  std::atomic<const char*> where_;
  bool stop_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace mnist_dist
