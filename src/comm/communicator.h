// The communicator interface: collectives used by training (gradients, SyncBN, parameter
// broadcast, hash checks). Implementations: single-process (here), MPI, NCCL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace mnist_dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual std::string name() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;

  // In-place sums over all ranks (blocking).
  virtual void allreduce_sum(float* data, size_t count) = 0;
  virtual void allreduce_sum(double* data, size_t count) = 0;
  // Copies root's bytes to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // Gathers one uint64 per rank onto every rank (out has size() entries).
  virtual void allgather_u64(uint64_t value, uint64_t* out) = 0;
  virtual void barrier() = 0;
};

// One process, no MPI: every collective is the identity.
std::unique_ptr<Communicator> make_single_process_communicator();

}  // namespace mnist_dist
