// Deterministic training's gradient exchange (train/gradient_sync.h, make_exact_sync): the
// layers have written their chunks' gradients in fixed point to the exact buffer
// (layers/exact_grad.h); integer sums over the ranks are exact, so the exchange's algorithm and
// the ranks' order cannot change a bit. The sums are then rounded back to float once, into the
// arena's gradients, and every rank takes the same Adam step.
#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "comm/sharded_exchange.h"
#include "core/error.h"
#include "cuda/buffer.h"
#include "layers/cpu_context.h"
#include "layers/exact_grad.h"
#include "layers/exact_grad_cuda.h"
#include "train/gradient_sync.h"

namespace mnist_dist {
namespace {

// The layer whose gradient range holds arena offset `offset`.
int layer_holding(const Model& model, size_t offset) {
  for (size_t i = 0; i < model.num_layers(); ++i) {
    const auto [b, e] = model.grad_range(i);
    if (b <= offset && offset < e) return static_cast<int>(i);
  }
  throw std::logic_error("exact gather: no layer holds gradient offset " + std::to_string(offset));
}

// One rank: as LayerwiseAdam, each layer's range as soon as backward has finished it. The large
// dense layers take the gather with nothing to gather (exact::Gather): this rank holds every
// chunk, so they round their sums to float themselves and write no fixed-point sums.
class ExactLayerwise final : public GradientSync, public exact::Gather {
 public:
  ExactLayerwise(Model& model, Adam& adam, Context& ctx)
      : model_(model), adam_(adam), ctx_(ctx), exact_(model.arena().param_count(), 0),
        gathered_(model.num_layers(), false) {
    ctx.exact_grads = exact_.data();
  }
  void begin_step() override {
    adam_.begin_step();
    std::fill(gathered_.begin(), gathered_.end(), false);
    ctx_.exact_gather = this;
  }
  void on_layer_done(int layer) override {
    ParamArena& arena = model_.arena();
    const auto [b, e] = model_.grad_range(static_cast<size_t>(layer));
    float* g = arena.grads();
    if (gathered_[static_cast<size_t>(layer)]) return adam_.update(arena.params(), g, b, e);
    const bool avx = use_avx512(ctx_);
    adam_.update_fed(arena.params(), g, b, e, [&](size_t lo, size_t hi) {
      exact::unfold(avx, exact_.data() + lo, hi - lo, g + lo);
    });
  }
  void finish_step() override { ctx_.exact_gather = nullptr; }
  void close() override { ctx_.exact_gather = nullptr; }
  std::string describe() const override { return "deterministic, one rank: exact sums, Adam per layer"; }

  // exact::Gather, alone: the layers stage nothing (stage and stage_of are never called)
  int ranks() const override { return 1; }
  float* stage(size_t offset) override { return reinterpret_cast<float*>(exact_.data() + offset); }
  const float* stage_of(size_t offset, int) const override { return reinterpret_cast<const float*>(exact_.data() + offset); }
  std::pair<size_t, size_t> exchange(size_t offset) override {
    const int layer = layer_holding(model_, offset);
    gathered_[static_cast<size_t>(layer)] = true;
    return model_.grad_range(static_cast<size_t>(layer));
  }

 private:
  Model& model_;
  Adam& adam_;
  Context& ctx_;
  std::vector<int64_t> exact_;
  std::vector<bool> gathered_;  // this step: the layer's gradients came from the gather
};

// Several ranks (--grad-exchange buckets, or no shared memory): one integer all-reduce of the
// whole buffer after backward, then one Adam step.
class ExactAllReduce final : public GradientSync {
 public:
  ExactAllReduce(Communicator& comm, Model& model, Adam& adam, Context& ctx)
      : comm_(comm), model_(model), adam_(adam), ctx_(ctx), exact_(model.arena().param_count(), 0) {
    ctx.exact_grads = exact_.data();
  }
  void on_layer_done(int) override {}
  void finish_step() override {
    ParamArena& arena = model_.arena();
    waiting([&] { comm_.allreduce_sum(exact_.data(), exact_.size()); });
    float* g = arena.grads();
    const bool avx = use_avx512(ctx_);
    adam_.begin_step();
    adam_.update_fed(arena.params(), g, 0, exact_.size(), [&](size_t lo, size_t hi) {
      exact::unfold(avx, exact_.data() + lo, hi - lo, g + lo);
    });
  }
  std::string describe() const override { return "deterministic: exact integer all-reduce of the gradients"; }

 private:
  Communicator& comm_;
  Model& model_;
  Adam& adam_;
  Context& ctx_;
  std::vector<int64_t> exact_;
};

// The CUDA backend, any number of ranks: the fixed-point buffer in device memory, one integer
// all-reduce after backward (ncclInt64; a one-rank communicator adds nothing), the range flag
// read (the one host wait this adds to a step), the sums rounded back on the device, then the
// fused Adam step.
class ExactDevice final : public GradientSync {
 public:
  ExactDevice(Communicator& comm, Model& model, Adam& adam, Context& ctx)
      : comm_(comm), model_(model), adam_(adam), ctx_(ctx),
        exact_(Backend::kCuda, model.arena().param_count()), diverged_(Backend::kCuda, 1) {
    ctx.exact_grads = exact_.data();
    ctx.exact_diverged = diverged_.data();
  }
  void on_layer_done(int) override {}
  void finish_step() override {
    if (comm_.size() > 1) waiting([&] { comm_.allreduce_sum(exact_.data(), exact_.size()); });
    unsigned bad = 0;
    diverged_.download(&bad, 1);
    if (bad != 0) {
      char msg[224];
      std::snprintf(msg, sizeof msg,
                    "training diverged: a chunk's gradient went beyond the deterministic mode's fixed-point range "
                    "(%g at %d chunks per step) or was not a number; try a smaller --lr",
                    static_cast<double>(exact::chunk_limit(ctx_.total_chunks)), ctx_.total_chunks);
      throw TrainingDiverged(msg);
    }
    ParamArena& arena = model_.arena();
    exact::unfold_cuda(exact_.data(), exact_.size(), arena.grads(), *ctx_.cuda);
    adam_.step(ctx_, arena.params(), arena.grads());
  }
  void close() override {
    ctx_.exact_grads = nullptr;
    ctx_.exact_diverged = nullptr;
  }
  std::string describe() const override {
    return "deterministic: exact integer all-reduce of the gradients on the device";
  }

 private:
  Communicator& comm_;
  Model& model_;
  Adam& adam_;
  Context& ctx_;
  Buffer<int64_t> exact_;
  Buffer<unsigned> diverged_;
};

// What the two shared-memory strategies share: the node's parameters and fixed-point buffers
// attached, and at the end the gradient and moments gathered before the windows go.
class ExactShardedBase : public GradientSync {
 public:
  ExactShardedBase(std::unique_ptr<ShardedExchange> ex, Model& model, Adam& adam, Context& ctx)
      : ex_(std::move(ex)), model_(model), adam_(adam), ctx_(ctx) {
    ex_->share_params(model.arena().params());  // equal on every rank (broadcast or resumed)
    model.arena().attach(ex_->params(), ex_->grads());
    ctx.exact_grads = ex_->exact_grads();
  }
  void close() override {
    if (!ex_) return;
    gather(model_.arena().grads());  // the last step's gradient, as with buckets
    gather_moments();
    model_.arena().detach();
    ctx_.exact_grads = nullptr;
    ex_->close();
    ex_.reset();
  }
  void gather_moments() override {
    gather(adam_.m());
    gather(adam_.v());
  }

 protected:
  // Collective: `data` (valid on this rank's part) complete on every rank.
  virtual void gather(float* data) = 0;
  // Rounds the node's sums of [b, e) into the arena's gradients as Adam updates them (begin_step
  // done); one node (node != null: its ranks' buffers, summed as read) or the own buffer, summed
  // over the ranks already.
  void round_and_update(size_t b, size_t e, const int64_t* const* node, int n) {
    float* g = model_.arena().grads();
    const int64_t* own = ex_->exact_grads();
    const bool avx = use_avx512(ctx_);
    adam_.update_fed(model_.arena().params(), g, b, e, [&](size_t lo, size_t hi) {
      if (node != nullptr) {
        exact::unfold_sum(avx, node, n, lo, hi, g);
      } else {
        exact::unfold(avx, own + lo, hi - lo, g + lo);
      }
    });
  }

  std::unique_ptr<ShardedExchange> ex_;
  Model& model_;
  Adam& adam_;
  Context& ctx_;
};

// CPU ranks sharing a node's memory, on several nodes: as ShardedUpdate, each rank sums its
// shard of the fixed-point gradients over all ranks, rounds it, updates its shard.
class ExactSharded final : public ExactShardedBase {
 public:
  using ExactShardedBase::ExactShardedBase;
  void on_layer_done(int) override {}
  void finish_step() override {
    waiting([&] { ex_->wait_grads(); });
    int n = 0;
    const int64_t* const* node = ex_->node_exact_grads(&n);  // one node: summed as it is read
    if (node == nullptr) ex_->reduce_shard_exact();
    adam_.begin_step();
    round_and_update(ex_->shard_begin(), ex_->shard_end(), node, n);
    waiting([&] { ex_->all_gather(); });
  }
  std::string describe() const override {
    return "deterministic: exact integer sums of the gradients through shared memory, sharded update";
  }

 protected:
  void gather(float* data) override { ex_->gather_full(data); }
};

// One node: as ShardedLayerUpdate, each of the L ranks owns the r-th 1/L of every layer's range
// and rounds and updates it as soon as every rank of the node has finished that layer's
// backward, summing the ranks' integer buffers as it reads them (while they are still in cache).
// The large dense layers go through the gather instead (exact::Gather, ctx.exact_gather while a
// step's only micro-step runs backward): their stages live in the ranks' own fixed-point buffers,
// where the weight's sums would be, which the gather leaves unused (a later step without the
// gather overwrites them whole); all_gather at the end of the step keeps every rank from
// rewriting its stage before the others have read it.
class ExactShardedLayer final : public ExactShardedBase, public exact::Gather {
 public:
  ExactShardedLayer(std::unique_ptr<ShardedExchange> ex, Communicator& comm, Model& model, Adam& adam, Context& ctx)
      : ExactShardedBase(std::move(ex), model, adam, ctx), parts_(model, comm.local_size(), comm.local_rank()),
        gathered_(model.num_layers(), false) {}
  void begin_step() override {
    node_ = ex_->node_exact_grads(&n_);
    parts_.begin_step(adam_.steps());
    adam_.begin_step();
    std::fill(gathered_.begin(), gathered_.end(), false);
    if (2 * model_.num_layers() <= ShardedExchange::kReadySlots) ctx_.exact_gather = this;  // (exchange's slots)
  }
  void on_layer_done(int layer) override {
    const auto [b, e] = parts_.arrive(*ex_, layer, [&](auto&& f) { waiting(f); });
    if (b >= e) return;
    if (gathered_[static_cast<size_t>(layer)]) {  // the gradients of the part are final floats
      adam_.update(model_.arena().params(), model_.arena().grads(), b, e);
    } else {
      round_and_update(b, e, node_, n_);
    }
  }
  void finish_step() override {
    ctx_.exact_gather = nullptr;
    waiting([&] { ex_->all_gather(); });
  }
  void close() override {
    ctx_.exact_gather = nullptr;
    ExactShardedBase::close();
  }
  std::string describe() const override {
    return "deterministic: exact integer sums of the gradients through shared memory, per layer";
  }

  // exact::Gather
  int ranks() const override { return n_; }
  float* stage(size_t offset) override { return reinterpret_cast<float*>(ex_->exact_grads() + offset); }
  const float* stage_of(size_t offset, int k) const override {
    return reinterpret_cast<const float*>(node_[k] + offset);
  }
  // Its own ready slot per layer (after the layers' ones): "stage written" comes before the layer's
  // input gradient, which still reads the weights that "layer done" lets the owners update.
  std::pair<size_t, size_t> exchange(size_t offset) override {
    const int layer = layer_holding(model_, offset);
    const int slot = static_cast<int>(model_.num_layers()) + layer;
    gathered_[static_cast<size_t>(layer)] = true;
    ex_->mark_ready(slot, parts_.step());
    const std::pair<size_t, size_t> part = parts_.part(layer);
    if (part.second > part.first) waiting([&] { ex_->wait_ready(slot, parts_.step()); });
    return part;
  }

 protected:
  void gather(float* data) override { ex_->gather_owned(data, parts_.owned()); }

 private:
  LayerParts parts_;
  std::vector<bool> gathered_;  // this step: the layer's part came from the gather
  const int64_t* const* node_ = nullptr;
  int n_ = 0;
};

}  // namespace

std::unique_ptr<GradientSync> make_exact_sync(const GradientSyncSetup& setup, Communicator& comm, Model& model,
                                              Adam& adam, Context& ctx, const Logger& log) {
  if (ctx.backend == Backend::kCuda) {
    if (setup.exchange == "sharded" && comm.size() > 1)
      throw UserError("--grad-exchange sharded is not available here: the CUDA backend all-reduces gradients "
                      "with NCCL (use auto or buckets)");
    return std::make_unique<ExactDevice>(comm, model, adam, ctx);
  }
  if (comm.size() == 1) return std::make_unique<ExactLayerwise>(model, adam, ctx);
  if (setup.exchange != "buckets") {
    std::string why;
    if (auto ex = comm.make_sharded_exchange(model.arena().param_count(), &why, /*exact=*/true)) {
      if (ex->per_layer() && model.num_layers() <= ShardedExchange::kReadySlots)
        return std::make_unique<ExactShardedLayer>(std::move(ex), comm, model, adam, ctx);
      return std::make_unique<ExactSharded>(std::move(ex), model, adam, ctx);
    }
    if (setup.exchange == "sharded")
      throw UserError("--grad-exchange sharded is not available here: " + why + " (use auto or buckets)");
    if (comm.local_size() > 1) log.notice("note: gradients go through the integer all-reduce: %s", why.c_str());
  }
  return std::make_unique<ExactAllReduce>(comm, model, adam, ctx);
}

}  // namespace mnist_dist
