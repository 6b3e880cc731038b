// Single-process communicator: world of one, collectives are no-ops; needs no MPI.
#include <cstdlib>

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
  int num_nodes() const override { return 1; }
  void allreduce_sum(float*, size_t) override {}
  void allreduce_sum(double*, size_t) override {}
  void allreduce_sum(int64_t*, size_t) override {}
  void start_allreduce_sum(float*, size_t) override {}
  void progress() override {}
  void wait_all() override {}
  void broadcast(void*, size_t, int) override {}
  void broadcast_idle(void*, size_t, int) override {}
  void allgather_u64(uint64_t value, uint64_t* out) override { out[0] = value; }
  void barrier() override {}
  [[noreturn]] void abort(int exit_code) override { std::_Exit(exit_code); }
};

}  // namespace

std::unique_ptr<Communicator> make_single_process_communicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

bool launched_by_mpi() {
  // Open MPI (mpirun), PMIx (srun --mpi=pmix, prterun), PMI-1/2 (srun, MPICH hydra).
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(var) != nullptr) return true;
  return false;
}

}  // namespace mnist_dist
