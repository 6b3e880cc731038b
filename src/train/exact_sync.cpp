// Deterministic training's gradient exchange (train/gradient_sync.h, make_exact_sync): the
// layers have written their chunks' gradients in fixed point to the exact buffer
// (layers/exact_grad.h); integer sums over the ranks are exact, so the exchange's algorithm and
// the ranks' order cannot change a bit. The sums are then rounded back to float once, into the
// arena's gradients, and every rank takes the same Adam step.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "comm/sharded_exchange.h"
#include "core/error.h"
#include "layers/cpu_context.h"
#include "layers/exact_grad.h"
#include "train/gradient_sync.h"

namespace mnist_dist {
namespace {

template <typename F>
void timed(double& total, F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One rank: as LayerwiseAdam, each layer's range as soon as backward has finished it.
class ExactLayerwise final : public GradientSync {
 public:
  ExactLayerwise(Model& model, Adam& adam, Context& ctx)
      : model_(model), adam_(adam), ctx_(ctx), exact_(model.arena().param_count(), 0) {
    ctx.exact_grads = exact_.data();
  }
  void begin_step() override { adam_.begin_step(); }
  void on_layer_done(int layer) override {
    ParamArena& arena = model_.arena();
    const auto [b, e] = model_.grad_range(static_cast<size_t>(layer));
    float* g = arena.grads();
    const bool avx = use_avx512(ctx_);
    adam_.update_fed(arena.params(), g, b, e, [&](size_t lo, size_t hi) {
      exact::unfold(avx, 1, exact_.data() + lo, hi - lo, g + lo);
    });
  }
  void finish_step() override {}
  std::string describe() const override { return "deterministic, one rank: exact sums, Adam per layer"; }

 private:
  Model& model_;
  Adam& adam_;
  Context& ctx_;
  std::vector<int64_t> exact_;
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
    timed(comm_seconds_, [&] { comm_.allreduce_sum(exact_.data(), exact_.size()); });
    float* g = arena.grads();
    const bool avx = use_avx512(ctx_);
    adam_.begin_step();
    adam_.update_fed(arena.params(), g, 0, exact_.size(), [&](size_t lo, size_t hi) {
      exact::unfold(avx, 1, exact_.data() + lo, hi - lo, g + lo);
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

// CPU ranks sharing a node's memory: as ShardedUpdate, each rank sums its shard of the
// fixed-point gradients over the ranks, rounds it, updates its shard of the shared parameters.
class ExactSharded final : public GradientSync {
 public:
  ExactSharded(std::unique_ptr<ShardedExchange> ex, Model& model, Adam& adam, Context& ctx)
      : ex_(std::move(ex)), model_(model), adam_(adam), ctx_(ctx) {
    ex_->share_params(model.arena().params());  // equal on every rank (broadcast or resumed)
    model.arena().attach(ex_->params(), ex_->grads());
    ctx.exact_grads = ex_->exact_grads();
  }
  void on_layer_done(int) override {}
  void finish_step() override {
    timed(comm_seconds_, [&] { ex_->wait_grads(); });
    const size_t sb = ex_->shard_begin(), se = ex_->shard_end();
    ParamArena& arena = model_.arena();
    int n = 0;
    const int64_t* const* node = ex_->node_exact_grads(&n);  // one node: summed as it is read
    if (node == nullptr) ex_->reduce_shard_exact();
    const int64_t* own = ex_->exact_grads();
    float* g = arena.grads();
    const bool avx = use_avx512(ctx_);
    adam_.begin_step();
    adam_.update_fed(arena.params(), g, sb, se, [&](size_t lo, size_t hi) {
      if (node != nullptr) {
        exact::unfold_sum(avx, 1, node, n, lo, hi, g);
      } else {
        exact::unfold(avx, 1, own + lo, hi - lo, g + lo);
      }
    });
    timed(comm_seconds_, [&] { ex_->all_gather(); });
  }
  void gather_moments() override {
    ex_->gather_full(adam_.m());
    ex_->gather_full(adam_.v());
  }
  void close() override {
    if (!ex_) return;
    ex_->gather_full(model_.arena().grads());  // the last step's gradient, as with buckets
    gather_moments();
    model_.arena().detach();
    ctx_.exact_grads = nullptr;
    ex_->close();
    ex_.reset();
  }
  std::string describe() const override {
    return "deterministic: exact integer sums of the gradients through shared memory, sharded update";
  }

 private:
  std::unique_ptr<ShardedExchange> ex_;
  Model& model_;
  Adam& adam_;
  Context& ctx_;
};

// One node: as ShardedLayerUpdate, each of the L ranks owns the r-th 1/L of every layer's range
// and rounds and updates it as soon as every rank of the node has finished that layer's
// backward, summing the ranks' integer buffers as it reads them (while they are still in cache).
class ExactShardedLayer final : public GradientSync {
 public:
  ExactShardedLayer(std::unique_ptr<ShardedExchange> ex, Communicator& comm, Model& model, Adam& adam, Context& ctx)
      : ex_(std::move(ex)), model_(model), adam_(adam), ctx_(ctx) {
    ex_->share_params(model.arena().params());
    model.arena().attach(ex_->params(), ex_->grads());
    ctx.exact_grads = ex_->exact_grads();
    const size_t L = static_cast<size_t>(comm.local_size()), r = static_cast<size_t>(comm.local_rank());
    for (size_t i = 0; i < model.num_layers(); ++i) {
      const auto [a, b] = model.grad_range(i);
      const size_t per = (b - a + 16 * L - 1) / (16 * L) * 16;
      const size_t lo = std::min(b, a + per * r), hi = std::min(b, a + per * (r + 1));
      parts_.emplace_back(lo, hi);
      if (hi > lo) owned_.emplace_back(lo, hi);
    }
  }
  void begin_step() override {
    node_ = ex_->node_exact_grads(&n_);
    step_no_ = static_cast<long long>(adam_.steps()) + 1;
    adam_.begin_step();
  }
  void on_layer_done(int layer) override {
    ex_->mark_ready(layer, step_no_);
    const auto [b, e] = parts_[static_cast<size_t>(layer)];
    if (b >= e) return;
    timed(comm_seconds_, [&] { ex_->wait_ready(layer, step_no_); });
    float* g = model_.arena().grads();
    const bool avx = use_avx512(ctx_);
    adam_.update_fed(model_.arena().params(), g, b, e, [&](size_t lo, size_t hi) {
      exact::unfold_sum(avx, 1, node_, n_, lo, hi, g);
    });
  }
  void finish_step() override { timed(comm_seconds_, [&] { ex_->all_gather(); }); }
  void gather_moments() override {
    ex_->gather_owned(adam_.m(), owned_);
    ex_->gather_owned(adam_.v(), owned_);
  }
  void close() override {
    if (!ex_) return;
    ex_->gather_owned(model_.arena().grads(), owned_);  // the last step's gradient
    gather_moments();
    model_.arena().detach();
    ctx_.exact_grads = nullptr;
    ex_->close();
    ex_.reset();
  }
  std::string describe() const override {
    return "deterministic: exact integer sums of the gradients through shared memory, per layer";
  }

 private:
  std::unique_ptr<ShardedExchange> ex_;
  Model& model_;
  Adam& adam_;
  Context& ctx_;
  std::vector<std::pair<size_t, size_t>> parts_, owned_;  // this rank's part of each layer; the non-empty ones
  const int64_t* const* node_ = nullptr;
  int n_ = 0;
  long long step_no_ = 0;
};

}  // namespace

std::unique_ptr<GradientSync> make_exact_sync(const GradientSyncSetup& setup, Communicator& comm, Model& model,
                                              Adam& adam, Context& ctx, const Logger& log) {
  MD_CHECK(ctx.backend == Backend::kCpu, "deterministic training runs on the CPU backend");
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
