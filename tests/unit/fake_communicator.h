// A communicator for unit tests that pretends to `size` ranks: every collective is a no-op
// (all-gather repeats this rank's value); tests override the calls they watch.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <string>

#include "comm/communicator.h"

namespace mnist_dist {

class FakeCommunicator : public Communicator {
 public:
  explicit FakeCommunicator(int size) : size_(size) {}
  std::string name() const override { return "fake"; }
  int rank() const override { return 0; }
  int size() const override { return size_; }
  int local_rank() const override { return 0; }
  int local_size() const override { return size_; }
  int num_nodes() const override { return 1; }
  void allreduce_sum(float*, size_t) override {}
  void allreduce_sum(double*, size_t) override {}
  void allreduce_sum(int64_t*, size_t) override {}
  void start_allreduce_sum(float*, size_t) override {}
  void progress() override {}
  void wait_all() override {}
  void broadcast(void*, size_t, int) override {}
  void broadcast_idle(void*, size_t, int) override {}
  void allgather_u64(uint64_t value, uint64_t* out) override { std::fill_n(out, size_, value); }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }

 protected:
  int size_;
};

}  // namespace mnist_dist
