// Deterministic training's gradient exchange (train/gradient_sync.h, make_exact_sync): the
// layers have added their chunks' gradients in fixed point to the exact buffer
// (layers/exact_grad.h); integer sums over the ranks are exact, so the all-reduce's algorithm
// and the ranks' order cannot change a bit. Each layer's range is then rounded back to float
// once, into the arena's gradients, and the buffer cleared for the next step.
#include <chrono>
#include <cstdio>

#include "core/error.h"
#include "layers/cpu_context.h"
#include "layers/exact_grad.h"
#include "train/gradient_sync.h"

namespace mnist_dist {
namespace {

// One rank: as LayerwiseAdam, each layer's range as soon as backward has finished it.
class ExactLayerwise final : public GradientSync {
 public:
  ExactLayerwise(Model& model, Adam& adam, Context& ctx, int64_t* exact)
      : model_(model), adam_(adam), ctx_(ctx), exact_(exact) {}
  void begin_step() override { adam_.begin_step(); }
  void on_layer_done(int layer) override {
    ParamArena& arena = model_.arena();
    const auto [b, e] = model_.grad_range(static_cast<size_t>(layer));
    exact::unfold_and_clear(use_avx512(ctx_), exact_ + b, e - b, arena.grads() + b);
    adam_.update(arena.params(), arena.grads(), b, e);
  }
  void finish_step() override {}
  std::string describe() const override { return "one rank, deterministic: exact sums, Adam per layer"; }

 private:
  Model& model_;
  Adam& adam_;
  Context& ctx_;
  int64_t* exact_;
};

// Several ranks: one integer all-reduce of the whole buffer after backward, then one Adam step.
class ExactAllReduce final : public GradientSync {
 public:
  ExactAllReduce(Communicator& comm, Model& model, Adam& adam, Context& ctx, int64_t* exact)
      : comm_(comm), model_(model), adam_(adam), ctx_(ctx), exact_(exact) {}
  void on_layer_done(int) override {}
  void finish_step() override {
    ParamArena& arena = model_.arena();
    const size_t n = arena.param_count();
    const auto t0 = std::chrono::steady_clock::now();
    comm_.allreduce_sum(exact_, n);
    comm_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    exact::unfold_and_clear(use_avx512(ctx_), exact_, n, arena.grads());
    adam_.step(ctx_, arena.params(), arena.grads());
  }
  std::string describe() const override { return "deterministic: exact integer all-reduce of the gradients"; }

 private:
  Communicator& comm_;
  Model& model_;
  Adam& adam_;
  Context& ctx_;
  int64_t* exact_;
};

}  // namespace

std::unique_ptr<GradientSync> make_exact_sync(Communicator& comm, Model& model, Adam& adam, Context& ctx,
                                              int64_t* exact) {
  MD_CHECK(ctx.backend == Backend::kCpu, "deterministic training runs on the CPU backend");
  if (comm.size() == 1) return std::make_unique<ExactLayerwise>(model, adam, ctx, exact);
  return std::make_unique<ExactAllReduce>(comm, model, adam, ctx, exact);
}

}  // namespace mnist_dist
