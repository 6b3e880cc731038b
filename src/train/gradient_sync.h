// How the ranks' gradients become one optimizer step (DESIGN.md contract 3). One strategy is
// chosen at start-up (make_gradient_sync); every step is then
//   sync.begin_step();
//   model.backward(ctx, dlogits, [&](int layer) { sync.on_layer_done(layer); });
//   sync.finish_step();   // afterwards every rank holds the same updated parameters
// The strategies:
//   LayerwiseAdam       one CPU rank: Adam updates each layer's range as its backward returns
//   BucketAllReduce     bucketed all-reduce overlapped with backward, then one Adam step (GPU
//                       ranks, several nodes, --grad-exchange buckets)
//   ShardedUpdate       CPU ranks of a node: each reduces and updates one shard (shared memory)
//   ShardedLayerUpdate  the same, per layer during backward (one node)
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.h"
#include "comm/sharded_exchange.h"
#include "core/context.h"
#include "model/model.h"
#include "optim/adam.h"
#include "train/logger.h"

namespace mnist_dist {

class GradientSync {
 public:
  virtual ~GradientSync() = default;
  GradientSync() = default;
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  virtual void begin_step() {}
  // Backward has written layer `layer`'s gradients (layers report last to first).
  virtual void on_layer_done(int layer) = 0;
  // Combines what is left and applies the optimizer step on every rank.
  virtual void finish_step() = 0;
  // Collective: Adam's moments complete on every rank (before a checkpoint is written).
  virtual void gather_moments() {}
  // Collective, at the normal end of a run: gradients and moments complete on every rank,
  // the arena back on its own buffers, shared memory released.
  virtual void close() {}
  // For the start line: how gradients are exchanged.
  virtual std::string describe() const = 0;

  // Seconds spent waiting for other ranks since the last call.
  double take_comm_seconds() {
    const double s = comm_seconds_;
    comm_seconds_ = 0.0;
    return s;
  }

 protected:
  // Runs f (a wait for other ranks), adding the seconds it takes to take_comm_seconds().
  template <typename F>
  void waiting(F&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    comm_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  double comm_seconds_ = 0.0;
};

struct GradientSyncSetup {
  std::string exchange = "auto";  // --grad-exchange: auto, sharded or buckets
  double bucket_mb = 1.0;         // --bucket-mb
};

// The per-layer protocol of the one-node strategies that update each layer as backward finishes
// it (ShardedLayerUpdate, ExactShardedLayer): local rank r of L owns the r-th 1/L of every
// layer's gradient range, in whole 64-byte lines (empty where the range is short).
class LayerParts {
 public:
  LayerParts(const Model& model, int local_size, int local_rank);
  void begin_step(int64_t optimizer_steps_done) { step_ = optimizer_steps_done + 1; }
  // Marks `layer` written by this rank for this step and, when this rank owns part of it, waits
  // (inside wait(f), which runs f) until every rank of the node has; returns that part.
  template <typename Wait>
  std::pair<size_t, size_t> arrive(ShardedExchange& ex, int layer, Wait&& wait) const {
    ex.mark_ready(layer, step_);
    const std::pair<size_t, size_t> part = parts_[static_cast<size_t>(layer)];
    if (part.second > part.first) wait([&] { ex.wait_ready(layer, step_); });
    return part;
  }
  // The non-empty parts (what gather_owned collects).
  const std::vector<std::pair<size_t, size_t>>& owned() const { return owned_; }
  std::pair<size_t, size_t> part(int layer) const { return parts_[static_cast<size_t>(layer)]; }
  long long step() const { return step_; }

 private:
  std::vector<std::pair<size_t, size_t>> parts_, owned_;
  long long step_ = 0;
};

// Deterministic training (--deterministic, CPU; train/exact_sync.cpp): sets ctx.exact_grads to
// the buffer the layers write fixed-point gradients into (layers/exact_grad.h); the strategy
// sums them over the ranks exactly (through shared memory or an integer all-reduce, as
// setup.exchange asks), rounds them into the arena's gradients and steps. Collective.
std::unique_ptr<GradientSync> make_exact_sync(const GradientSyncSetup& setup, Communicator& comm, Model& model,
                                              Adam& adam, Context& ctx, const Logger& log);

// Collective (every rank decides alike). Call once the parameters are equal on every rank
// (the sharded strategies move them into memory the node's ranks share). UserError when
// `sharded` was asked for and is not available.
std::unique_ptr<GradientSync> make_gradient_sync(const GradientSyncSetup& setup, Communicator& comm,
                                                 Model& model, Adam& adam, Context& ctx,
                                                 const Logger& log);

}  // namespace mnist_dist
