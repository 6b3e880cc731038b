// Host-staged communicator (comm/comm_host_staged.h): device all-reduces through host memory.
#include "comm/comm_host_staged.h"

#include <cstdlib>
#include <vector>

#include "cuda/cuda_runtime_api.h"

namespace mnist_dist {
namespace {

class HostStagedCommunicator final : public Communicator {
 public:
  HostStagedCommunicator(std::unique_ptr<Communicator> host, DeviceMemory memory)
      : host_(std::move(host)), mem_(memory) {}

  std::string name() const override { return "host-staged " + host_->name(); }
  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  int local_rank() const override { return host_->local_rank(); }
  int local_size() const override { return host_->local_size(); }
  int num_nodes() const override { return host_->num_nodes(); }

  void allreduce_sum(float* data, size_t count) override { staged(data, count, floats_); }
  void allreduce_sum(double* data, size_t count) override { staged(data, count, doubles_); }
  void allreduce_sum(int64_t* data, size_t count) override { staged(data, count, int64s_); }
  void start_allreduce_sum(float* data, size_t count) override {
    if (mem_.is_device(data)) return staged(data, count, floats_);
    host_->start_allreduce_sum(data, count);
  }
  void progress() override { host_->progress(); }
  void wait_all() override { host_->wait_all(); }
  void broadcast(void* data, size_t bytes, int root) override { host_->broadcast(data, bytes, root); }
  void broadcast_idle(void* data, size_t bytes, int root) override {
    host_->broadcast_idle(data, bytes, root);
  }
  void allgather_u64(uint64_t value, uint64_t* out) override { host_->allgather_u64(value, out); }
  void barrier() override { host_->barrier(); }
  [[noreturn]] void abort(int exit_code) override {
    host_->abort(exit_code);
    std::_Exit(exit_code);  // not reached: the host communicator ends the job
  }

 private:
  template <typename T>
  void staged(T* data, size_t count, std::vector<T>& host) {
    if (count == 0) return;
    if (!mem_.is_device(data)) return host_->allreduce_sum(data, count);
    host.resize(count);
    mem_.to_host(host.data(), data, count * sizeof(T));
    host_->allreduce_sum(host.data(), count);
    mem_.to_device(data, host.data(), count * sizeof(T));
  }

  std::unique_ptr<Communicator> host_;
  DeviceMemory mem_;
  std::vector<float> floats_;
  std::vector<double> doubles_;
  std::vector<int64_t> int64s_;
};

}  // namespace

DeviceMemory cuda_device_memory() { return DeviceMemory{is_device_pointer, copy_d2h, copy_h2d}; }

std::unique_ptr<Communicator> make_host_staged_communicator(std::unique_ptr<Communicator> host,
                                                            DeviceMemory memory) {
  return std::make_unique<HostStagedCommunicator>(std::move(host), memory);
}

}  // namespace mnist_dist
