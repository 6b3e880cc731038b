// Single-process communicator: world of one, collectives are no-ops; needs no MPI.
#include "comm/communicator.h"

namespace mnist_dist {
namespace {

class SingleProcessCommunicator final : public Communicator {
 public:
  std::string name() const override { return "single-process"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  void allreduce_sum(float*, size_t) override {}
  void allreduce_sum(double*, size_t) override {}
  void broadcast(void*, size_t, int) override {}
  void allgather_u64(uint64_t value, uint64_t* out) override { out[0] = value; }
  void barrier() override {}
};

}  // namespace

std::unique_ptr<Communicator> make_single_process_communicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

}  // namespace mnist_dist
