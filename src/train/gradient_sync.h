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

#include <memory>
#include <string>

#include "comm/communicator.h"
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
  double comm_seconds_ = 0.0;
};

struct GradientSyncSetup {
  std::string exchange = "auto";  // --grad-exchange: auto, sharded or buckets
  double bucket_mb = 1.0;         // --bucket-mb
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
