// The communicator interface: collectives used by training (gradient buckets, SyncBN,
// parameter broadcast, hash checks). Implementations: single-process, MPI, (NCCL).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "comm/sharded_exchange.h"

namespace mnist_dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual std::string name() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;   // rank among the processes of this node
  virtual int local_size() const = 0;
  virtual int num_nodes() const = 0;

  // In-place sums over all ranks (blocking).
  virtual void allreduce_sum(float* data, size_t count) = 0;
  virtual void allreduce_sum(double* data, size_t count) = 0;
  // Integer sums (deterministic training's fixed-point gradients: exact in any order).
  virtual void allreduce_sum(int64_t* data, size_t count) = 0;
  // Non-blocking in-place sum: start it, drive progress between pieces of work, wait for all.
  virtual void start_allreduce_sum(float* data, size_t count) = 0;
  virtual void progress() = 0;
  virtual void wait_all() = 0;
  // Copies root's bytes to every rank. The idle variant waits without spinning a core
  // (for ranks that wait while rank 0 evaluates).
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void broadcast_idle(void* data, size_t bytes, int root) = 0;
  // Gathers one uint64 per rank onto every rank (out has size() entries).
  virtual void allgather_u64(uint64_t value, uint64_t* out) = 0;
  virtual void barrier() = 0;
  // Collective. A sharded gradient exchange over `count` floats through memory shared by the
  // ranks of each node (comm/sharded_exchange.h; with `exact`, also fixed-point gradients), or
  // null with the reason in *why when this communicator cannot give one.
  virtual std::unique_ptr<ShardedExchange> make_sharded_exchange(size_t count, std::string* why,
                                                                 bool exact = false) {
    (void)count, (void)exact;
    if (why != nullptr) *why = "the " + name() + " communicator has no shared-memory exchange";
    return nullptr;
  }
  // Ends every rank of the job (used by the fatal path).
  [[noreturn]] virtual void abort(int exit_code) = 0;
};

// One process, no MPI: every collective is the identity.
std::unique_ptr<Communicator> make_single_process_communicator();

// True when this process was started by an MPI launcher (mpirun/mpiexec/srun): the
// environment carries the launcher's rank variables.
bool launched_by_mpi();

// Initialises MPI (thread level FUNNELED) and returns a communicator over MPI_COMM_WORLD.
// In a build without MPI this throws a UserError saying so.
std::unique_ptr<Communicator> make_mpi_world_communicator();

}  // namespace mnist_dist
