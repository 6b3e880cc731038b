// The gradient exchange strategies of train/gradient_sync.h and the choice between them.
#include "train/gradient_sync.h"

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "comm/grad_buckets.h"
#include "comm/sharded_exchange.h"
#include "core/error.h"

namespace mnist_dist {
namespace {

// One rank: a layer's gradients are final when its backward returns; Adam updates its range
// then, while they (and the layer's weights, just read) are still in cache. The same
// element-wise step as one Adam::step afterwards (bit-equal; the layers' ranges cover every
// parameter but the alignment padding, which stays zero either way).
class LayerwiseAdam final : public GradientSync {
 public:
  LayerwiseAdam(Model& model, Adam& adam) : model_(model), adam_(adam) {}
  void begin_step() override { adam_.begin_step(); }
  void on_layer_done(int layer) override {
    ParamArena& arena = model_.arena();
    const auto [b, e] = model_.grad_range(static_cast<size_t>(layer));
    adam_.update(arena.params(), arena.grads(), b, e);
  }
  void finish_step() override {}
  std::string describe() const override { return "one rank: Adam per layer as backward finishes it"; }

 private:
  Model& model_;
  Adam& adam_;
};

std::vector<Bucket> layer_buckets(const Model& model, double bucket_mb) {
  std::vector<std::pair<size_t, size_t>> ranges;
  for (size_t i = 0; i < model.num_layers(); ++i) ranges.push_back(model.grad_range(i));
  const size_t floats = std::max<size_t>(1, static_cast<size_t>(bucket_mb * 1048576.0 / sizeof(float)));
  return make_buckets(ranges, floats);
}

// Σ over ranks of the per-rank gradients of (global-mean loss) = the global gradient: buckets
// are all-reduced as backward completes them, then every rank takes the same Adam step.
class BucketAllReduce final : public GradientSync {
 public:
  BucketAllReduce(Communicator& comm, Model& model, Adam& adam, Context& ctx, double bucket_mb)
      : model_(model), adam_(adam), ctx_(ctx), bucket_mb_(bucket_mb),
        reducer_(comm, layer_buckets(model, bucket_mb), model.arena().grads()) {}
  void on_layer_done(int layer) override {
    reducer_.ready_from(model_.grad_range(static_cast<size_t>(layer)).first);
  }
  void finish_step() override {
    waiting([&] { reducer_.finish(); });
    adam_.step(ctx_, model_.arena().params(), model_.arena().grads());
  }
  std::string describe() const override {
    char s[96];
    std::snprintf(s, sizeof s, "%zu gradient buckets of <= %g MiB", reducer_.buckets().size(), bucket_mb_);
    return s;
  }

 private:
  Model& model_;
  Adam& adam_;
  Context& ctx_;
  double bucket_mb_;
  GradientReducer reducer_;
};

// The node's ranks share one parameter buffer; each sums its shard of the gradient over the
// ranks, updates it, and all_gather ends the step (comm/sharded_exchange.h).
class ShardedUpdate : public GradientSync {
 public:
  ShardedUpdate(std::unique_ptr<ShardedExchange> ex, Communicator& comm, Model& model, Adam& adam)
      : ex_(std::move(ex)), comm_(comm), model_(model), adam_(adam) {
    ex_->share_params(model.arena().params());  // equal on every rank (broadcast or resumed)
    model.arena().attach(ex_->params(), ex_->grads());
  }
  void on_layer_done(int) override {}
  void finish_step() override {
    waiting([&] { ex_->wait_grads(); });
    const size_t sb = ex_->shard_begin(), se = ex_->shard_end();
    ParamArena& arena = model_.arena();
    int n = 0;
    if (const float* const* node = ex_->node_grads(&n)) {  // sum as Adam reads
      adam_.step_sum(arena.params(), node, n, sb, se);
      grads_summed_ = false;
    } else {
      ex_->reduce_shard();
      adam_.step(arena.params(), arena.grads(), sb, se);
      grads_summed_ = true;
    }
    waiting([&] { ex_->all_gather(); });
  }
  void gather_moments() override {
    ex_->gather_full(adam_.m());
    ex_->gather_full(adam_.v());
  }
  void close() override {
    if (!ex_) return;
    if (!grads_summed_) ex_->reduce_shard();  // the last step's gradient, as with buckets
    ex_->gather_full(model_.arena().grads());
    gather_moments();
    model_.arena().detach();
    ex_->close();
    ex_.reset();
  }
  std::string describe() const override {
    char s[96];
    std::snprintf(s, sizeof s, "gradients sharded over shared memory (%d per node, %.1f MB shard)",
                  comm_.local_size(), static_cast<double>(ex_->shard_end() - ex_->shard_begin()) * 4e-6);
    return s;
  }

 protected:
  std::unique_ptr<ShardedExchange> ex_;
  Communicator& comm_;
  Model& model_;
  Adam& adam_;
  bool grads_summed_ = true;  // grads()[shard] holds the sum over ranks (not just this rank's)
};

// One node: each of the L ranks owns the r-th 1/L of every layer's range (whole 64-byte
// lines) and updates it as soon as every rank of the node has finished that layer's backward
// (summing their gradient buffers as Adam reads), while the layer's gradients are still in
// cache; the ranks' Adam work runs side by side. Per element the same update as one step_sum
// after a barrier, bit for bit.
class ShardedLayerUpdate final : public ShardedUpdate {
 public:
  ShardedLayerUpdate(std::unique_ptr<ShardedExchange> ex, Communicator& comm, Model& model, Adam& adam)
      : ShardedUpdate(std::move(ex), comm, model, adam), parts_(model, comm.local_size(), comm.local_rank()) {}
  void begin_step() override {
    node_ = ex_->node_grads(&n_);
    parts_.begin_step(adam_.steps());
    adam_.begin_step();
  }
  void on_layer_done(int layer) override {
    const auto [b, e] = parts_.arrive(*ex_, layer, [&](auto&& f) { waiting(f); });
    if (b < e) adam_.update_sum(model_.arena().params(), node_, n_, b, e);
  }
  void finish_step() override {
    grads_summed_ = false;
    waiting([&] { ex_->all_gather(); });
  }
  void gather_moments() override {
    ex_->gather_owned(adam_.m(), parts_.owned());
    ex_->gather_owned(adam_.v(), parts_.owned());
  }

 private:
  LayerParts parts_;
  const float* const* node_ = nullptr;
  int n_ = 0;
};

}  // namespace

LayerParts::LayerParts(const Model& model, int local_size, int local_rank) {
  const size_t L = static_cast<size_t>(local_size), r = static_cast<size_t>(local_rank);
  for (size_t i = 0; i < model.num_layers(); ++i) {
    const auto [a, b] = model.grad_range(i);
    const size_t per = (b - a + 16 * L - 1) / (16 * L) * 16;
    parts_.emplace_back(std::min(b, a + per * r), std::min(b, a + per * (r + 1)));
    if (parts_.back().second > parts_.back().first) owned_.push_back(parts_.back());
  }
}

std::unique_ptr<GradientSync> make_gradient_sync(const GradientSyncSetup& setup, Communicator& comm,
                                                 Model& model, Adam& adam, Context& ctx,
                                                 const Logger& log) {
  if (setup.exchange != "buckets" && comm.size() > 1) {
    std::string why = "the CUDA backend all-reduces gradients with NCCL";
    std::unique_ptr<ShardedExchange> ex;
    if (ctx.backend == Backend::kCpu) ex = comm.make_sharded_exchange(model.arena().param_count(), &why);
    if (ex) {
      if (ex->per_layer() && model.num_layers() <= ShardedExchange::kReadySlots)
        return std::make_unique<ShardedLayerUpdate>(std::move(ex), comm, model, adam);
      return std::make_unique<ShardedUpdate>(std::move(ex), comm, model, adam);
    }
    if (setup.exchange == "sharded")
      throw UserError("--grad-exchange sharded is not available here: " + why + " (use auto or buckets)");
    if (ctx.backend == Backend::kCpu && comm.local_size() > 1)  // it would have applied: say why not
      log.notice("note: gradients go through the bucketed all-reduce: %s", why.c_str());
  }
  if (comm.size() == 1 && ctx.backend == Backend::kCpu) return std::make_unique<LayerwiseAdam>(model, adam);
  return std::make_unique<BucketAllReduce>(comm, model, adam, ctx, setup.bucket_mb);
}

}  // namespace mnist_dist
