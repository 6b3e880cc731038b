// Sharded gradient exchange for ranks that share a node's memory (CPU backend). Each rank's
// gradient buffer lives in a shared-memory window, and the node's ranks share one parameter
// buffer, so nothing is copied between ranks:
//   reduce_scatter(): every rank sums its own shard of the arena over the node's gradient
//       buffers (in local-rank order, so the sum is the same whoever computes it); on several
//       nodes the shard is then all-reduced among the ranks holding the same shard elsewhere.
//   the caller's optimizer updates only this rank's shard of params() (ZeRO-1 style: the
//       optimizer moments outside the shard go stale until gather_full);
//   all_gather(): waits until every shard is updated; then every rank reads all of params().
// Replicas are identical by construction on a node (one parameter buffer) and across nodes
// (the same reduced gradient, the same update, per shard).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace mnist_dist {

class ShardedExchange {
 public:
  virtual ~ShardedExchange() = default;
  // This rank's gradient buffer (count floats, 64-byte aligned, zero at creation): backward
  // writes here.
  virtual float* grads() = 0;
  // The node's shared parameter buffer (count floats, 64-byte aligned).
  virtual float* params() = 0;
  virtual size_t count() const = 0;
  // [shard_begin, shard_end): the coordinates this rank reduces and updates.
  virtual size_t shard_begin() const = 0;
  virtual size_t shard_end() const = 0;
  // Collective: waits until every rank of the node has written its gradient buffer.
  virtual void wait_grads() = 0;
  // After wait_grads: grads()[shard] becomes the sum over all ranks of the job (collective
  // across nodes when there are several).
  virtual void reduce_shard() = 0;
  void reduce_scatter() { wait_grads(), reduce_shard(); }
  // One node only (else null): the node's gradient buffers in local-rank order, for an
  // optimizer that sums them as it reads them (one pass less over the shard than reduce_shard
  // followed by the update; the same sum, in the same order).
  virtual const float* const* node_grads(int* n) = 0;
  // One node only (else false): readiness per layer instead of one barrier, so the optimizer
  // can update a layer's part of the shard during backward. mark_ready(slot, step): this rank's
  // gradients for `slot` (a layer; 0 <= slot < kReadySlots) are written for step `step` (> 0,
  // increasing). wait_ready(slot, step): returns once every rank of the node has marked `slot`
  // for `step`; what they wrote before marking is then visible here. all_gather() still ends
  // the step (nobody reads parameters or rewrites gradients before every update is done).
  static constexpr int kReadySlots = 256;
  virtual bool per_layer() const { return false; }
  virtual void mark_ready(int /*slot*/, long long /*step*/) {}
  virtual void wait_ready(int /*slot*/, long long /*step*/) {}
  // Deterministic training (an exchange made with exact gradients; else null): this rank's
  // fixed-point gradient buffer (count int64, 64-byte aligned, zero at creation), shared like
  // grads(). reduce_shard_exact(), after wait_grads: exact_grads()[shard] becomes the sum over all
  // ranks of the job (integers: the same whoever adds them, in any order; collective across
  // nodes when there are several).
  virtual int64_t* exact_grads() { return nullptr; }
  virtual void reduce_shard_exact() {}
  // One node only (else null): the node's fixed-point gradient buffers in local-rank order, for
  // a caller that sums the shard as it reads it (one pass less than reduce_shard_exact).
  virtual const int64_t* const* node_exact_grads(int* /*n*/) { return nullptr; }
  // Collective. Fills params() with `initial` (equal on every rank; local rank 0 copies).
  virtual void share_params(const float* initial) = 0;
  // Collective. Every rank has updated its shard of params(); afterwards all of it is current.
  virtual void all_gather() = 0;
  // Collective. data (count floats, private memory) is valid on this rank's shard; afterwards
  // it is complete on every rank (optimizer moments before a checkpoint; the gradient at the end).
  virtual void gather_full(float* data) = 0;
  // Collective on the node (one node, per_layer()). data (count floats, private memory) is
  // valid on this rank's ranges `mine`; the node's ranks own disjoint ranges. Afterwards every
  // rank holds every rank's ranges, bit for bit, and zeros where nobody owns anything.
  virtual void gather_owned(float* data, const std::vector<std::pair<size_t, size_t>>& mine) = 0;
  // Collective: frees the shared windows. Without it (error paths, where other ranks may never
  // arrive) the memory is left to MPI_Finalize / MPI_Abort.
  virtual void close() = 0;
};

}  // namespace mnist_dist
