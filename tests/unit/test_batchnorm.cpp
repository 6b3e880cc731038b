// BatchNorm (CPU): training-mode forward/backward against the double reference and finite
// differences, the Keras running-statistics update checked by hand over two steps, evaluation
// with the running statistics, tiny reductions (N·H·W = 2 and 1), and the same bits on any
// number of OpenMP threads.
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <memory>

#include "comm/communicator.h"
#include "fake_communicator.h"
#include "gradcheck.h"
#include "layers/batchnorm.h"
#include "reference.h"
#include "test_util.h"

namespace mnist_dist::test {
namespace {

constexpr double kEps = 1e-3;  // Keras default epsilon
constexpr double kMomentum = 0.99;

struct Bn {
  explicit Bn(Shape xs, int reserve_n = 0)
      : h(make_batchnorm(Backend::kCpu, BatchNormConfig{xs.c}),
          reserve_n > 0 ? xs.with_batch(reserve_n) : xs) {}
  std::vector<double> get(const char* s) {
    const int id = h.id(s);
    return to_double(h.arena.param(id), h.arena.info(id).count);
  }
  void set(const char* s, const std::vector<float>& v) {
    std::copy(v.begin(), v.end(), h.arena.param(h.id(s)));
  }
  std::vector<float> grad(const char* s) {
    const int id = h.id(s);
    return std::vector<float>(h.arena.grad(id), h.arena.grad(id) + h.arena.info(id).count);
  }
  LayerHarness h;
};

// x with a different mean and spread per channel, so that normalisation matters.
std::vector<float> channel_data(const Shape& xs, uint64_t seed) {
  std::vector<float> x = random_vector(xs.size(), seed);
  for (size_t i = 0; i < x.size(); ++i) {
    const int c = static_cast<int>(i / (xs.h * xs.w) % xs.c);
    x[i] = static_cast<float>(0.5 * c - 1.0 + (1.0 + 0.5 * c) * x[i]);
  }
  return x;
}

TEST(BatchNormCpu, DeclaresKerasTensorsAndInit) {
  Bn bn(Shape{2, 3, 2, 2});
  EXPECT_EQ(bn.get("weight"), std::vector<double>(3, 1.0));
  EXPECT_EQ(bn.get("bias"), std::vector<double>(3, 0.0));
  EXPECT_EQ(bn.get("running_mean"), std::vector<double>(3, 0.0));
  EXPECT_EQ(bn.get("running_var"), std::vector<double>(3, 1.0));
  EXPECT_TRUE(bn.h.arena.info(bn.h.id("weight")).trainable);
  EXPECT_TRUE(bn.h.arena.info(bn.h.id("bias")).trainable);
  EXPECT_FALSE(bn.h.arena.info(bn.h.id("running_mean")).trainable);
  EXPECT_FALSE(bn.h.arena.info(bn.h.id("running_var")).trainable);
  EXPECT_EQ(bn.h.arena.trainable_scalars(), 6u);
}

TEST(BatchNormCpu, TrainForwardBackwardMatchReference) {
  const Shape xs{3, 4, 5, 3};
  Bn bn(xs);
  bn.set("weight", {0.5f, 1.5f, -0.8f, 1.0f});
  bn.set("bias", {0.1f, -0.2f, 0.3f, 0.0f});
  std::vector<float> x = channel_data(xs, 1), y, dx, dy = random_vector(xs.size(), 2);
  bn.h.forward(x, xs, y, true);
  const auto gamma = bn.get("weight"), beta = bn.get("bias");
  const auto f = ref::batchnorm_train_forward(to_double(x), xs, gamma, beta, kEps);
  EXPECT_TRUE(all_close("bn y", y, f.y, 1e-5, 1e-5, &xs));

  std::fill_n(bn.h.arena.grads(), bn.h.arena.param_count(), 55.0f);
  bn.h.backward(x, xs, y, dy, dx);
  const auto g = ref::batchnorm_train_backward(to_double(x), xs, gamma, to_double(dy), kEps);
  EXPECT_TRUE(all_close("bn dx", dx, g.dx, 1e-5 * max_abs(g.dx), 1e-5, &xs));
  EXPECT_TRUE(all_close("bn dgamma", bn.grad("weight"), g.dgamma, 1e-5 * max_abs(g.dgamma), 1e-5));
  EXPECT_TRUE(all_close("bn dbeta", bn.grad("bias"), g.dbeta, 1e-5 * max_abs(g.dbeta), 1e-5));

  // Running statistics after one step: Keras momentum, unbiased variance.
  std::vector<double> rm(4, 0.0), rv(4, 1.0);
  ref::batchnorm_running_update(rm, f.mean, kMomentum);
  ref::batchnorm_running_update(rv, f.var_unbiased, kMomentum);
  EXPECT_TRUE(all_close("running_mean", bn.h.arena.param(bn.h.id("running_mean")), rm, 1e-6, 1e-6));
  EXPECT_TRUE(all_close("running_var", bn.h.arena.param(bn.h.id("running_var")), rv, 1e-6, 1e-6));
}

TEST(BatchNormCpu, TrainGradientsMatchFiniteDifferences) {
  const Shape xs{3, 2, 3, 3};
  Bn bn(xs);
  bn.set("weight", {0.7f, -1.3f});
  bn.set("bias", {0.2f, -0.4f});
  std::vector<float> x = channel_data(xs, 3), dy = random_vector(xs.size(), 4);
  Tensor tx{x.data(), xs}, tdy{dy.data(), xs};
  GradCheckOptions o;
  o.skip_kinks = false;  // smooth
  const GradCheckReport r = check_layer_gradients(*bn.h.layer, bn.h.arena, bn.h.ctx, tx, tdy, o);
  EXPECT_TRUE(r.result());
  // The check restores the running statistics after its many forward passes.
  EXPECT_EQ(bn.get("running_mean"), std::vector<double>(2, 0.0));
  EXPECT_EQ(bn.get("running_var"), std::vector<double>(2, 1.0));
}

// Hand-checkable: one channel, x = 1, 2, 3, 4 then 0, 0, 2, 2.
TEST(BatchNormCpu, RunningStatsByHandOverTwoSteps) {
  const Shape xs{4, 1, 1, 1};
  Bn bn(xs);
  std::vector<float> x{1, 2, 3, 4}, y;
  bn.h.forward(x, xs, y, true);
  // mean 2.5, biased var 1.25 (normalises), unbiased var 5/3 (running update).
  const double inv = 1.0 / std::sqrt(1.25 + 1e-3);
  EXPECT_TRUE(all_close("y step 1", y, {-1.5 * inv, -0.5 * inv, 0.5 * inv, 1.5 * inv}, 1e-6, 1e-6));
  float* rm = bn.h.arena.param(bn.h.id("running_mean"));
  float* rv = bn.h.arena.param(bn.h.id("running_var"));
  EXPECT_NEAR(rm[0], 0.99 * 0.0 + 0.01 * 2.5, 1e-7);         // 0.025
  EXPECT_NEAR(rv[0], 0.99 * 1.0 + 0.01 * (5.0 / 3.0), 1e-6);  // 1.0066667

  x = {0, 0, 2, 2};  // mean 1, biased var 1, unbiased var 4/3
  bn.h.forward(x, xs, y, true);
  const double inv2 = 1.0 / std::sqrt(1.0 + 1e-3);
  EXPECT_TRUE(all_close("y step 2", y, {-inv2, -inv2, inv2, inv2}, 1e-6, 1e-6));
  EXPECT_NEAR(rm[0], 0.03475, 1e-7);     // 0.99·0.025 + 0.01·1
  EXPECT_NEAR(rv[0], 1.0099333333, 1e-6);  // 0.99·1.0066667 + 0.01·4/3

  // Evaluation normalises with the running statistics and leaves them alone.
  const Shape es{2, 1, 1, 1};
  std::vector<float> xe{0.5f, 3.0f}, ye;
  bn.set("weight", {2.0f});
  bn.set("bias", {0.25f});
  bn.h.forward(xe, es, ye, false);
  const double s = std::sqrt(1.0099333333 + 1e-3);
  EXPECT_TRUE(all_close("y eval", ye, {2.0 * (0.5 - 0.03475) / s + 0.25, 2.0 * (3.0 - 0.03475) / s + 0.25},
                        1e-6, 1e-6));
  EXPECT_NEAR(rm[0], 0.03475, 1e-7);
  EXPECT_NEAR(rv[0], 1.0099333333, 1e-6);
}

TEST(BatchNormCpu, EvalUsesRunningStatsMatchesReference) {
  const Shape xs{2, 3, 4, 5};
  Bn bn(xs);
  bn.set("weight", {1.2f, 0.4f, -0.7f});
  bn.set("bias", {0.0f, 0.5f, -0.1f});
  bn.set("running_mean", {0.3f, -0.6f, 1.1f});
  bn.set("running_var", {0.5f, 2.0f, 0.05f});
  std::vector<float> x = channel_data(xs, 7), y;
  bn.h.forward(x, xs, y, false);
  const auto ref = ref::batchnorm_eval_forward(to_double(x), xs, bn.get("weight"), bn.get("bias"),
                                               bn.get("running_mean"), bn.get("running_var"), kEps);
  EXPECT_TRUE(all_close("bn eval y", y, ref, 1e-5, 1e-5, &xs));
  // Sample-wise: one sample alone gives the same output as in the batch.
  const Shape one{1, 3, 4, 5};
  std::vector<float> x1(x.begin(), x.begin() + one.size()), y1;
  bn.h.forward(x1, one, y1, false);
  EXPECT_TRUE(all_close("bn eval y (1 sample)", y1,
                        std::vector<double>(ref.begin(), ref.begin() + one.size()), 1e-6, 1e-6));
  EXPECT_EQ(bn.get("running_mean"), (std::vector<double>{0.3f, -0.6f, 1.1f}));
}

// N·H·W = 2 per channel: x̂ = ±d/√(d²+ε); still matches the reference and finite differences.
TEST(BatchNormCpu, TinyReductionTwoElements) {
  const Shape xs{2, 3, 1, 1};
  Bn bn(xs);
  bn.set("weight", {1.5f, 0.5f, -1.0f});
  bn.set("bias", {0.1f, 0.2f, 0.3f});
  std::vector<float> x{0.2f, -0.7f, 1.9f, -0.4f, 0.3f, 2.6f}, y, dx;
  std::vector<float> dy{0.3f, -0.8f, 0.5f, 0.9f, 0.1f, -0.6f};
  bn.h.forward(x, xs, y, true);
  const auto gamma = bn.get("weight"), beta = bn.get("bias");
  const auto f = ref::batchnorm_train_forward(to_double(x), xs, gamma, beta, kEps);
  EXPECT_TRUE(all_close("bn y", y, f.y, 1e-5, 1e-5, &xs));
  bn.h.backward(x, xs, y, dy, dx);
  const auto g = ref::batchnorm_train_backward(to_double(x), xs, gamma, to_double(dy), kEps);
  EXPECT_TRUE(all_close("bn dx", dx, g.dx, 1e-5, 1e-5, &xs));
  // Unbiased variance of two values: twice the biased one.
  std::vector<double> rv(3, 1.0);
  ref::batchnorm_running_update(rv, f.var_unbiased, kMomentum);
  EXPECT_TRUE(all_close("running_var", bn.h.arena.param(bn.h.id("running_var")), rv, 1e-6, 1e-6));

  Tensor tx{x.data(), xs}, tdy{dy.data(), xs};
  GradCheckOptions o;
  o.skip_kinks = false;
  EXPECT_TRUE(check_layer_gradients(*bn.h.layer, bn.h.arena, bn.h.ctx, tx, tdy, o).result());
}

// N·H·W = 1: the variance is 0, y = β, dx = 0, and the running variance uses the biased 0.
TEST(BatchNormCpu, TinyReductionOneElement) {
  const Shape xs{1, 2, 1, 1};
  Bn bn(xs);
  bn.set("bias", {0.25f, -0.5f});
  std::vector<float> x{3.0f, -2.0f}, y, dx, dy{0.7f, -0.3f};
  bn.h.forward(x, xs, y, true);
  EXPECT_TRUE(all_close("bn y", y, {0.25, -0.5}, 1e-6, 0));
  bn.h.backward(x, xs, y, dy, dx);
  EXPECT_TRUE(all_close("bn dx", dx, {0.0, 0.0}, 1e-6, 0));
  EXPECT_TRUE(all_close("bn dbeta", bn.grad("bias"), {0.7, -0.3}, 1e-7, 0));
  EXPECT_TRUE(all_close("bn dgamma", bn.grad("weight"), {0.0, 0.0}, 1e-7, 0));
  EXPECT_TRUE(all_close("running_mean", bn.h.arena.param(bn.h.id("running_mean")),
                        {0.01 * 3.0, 0.01 * -2.0}, 1e-7, 1e-6));
  EXPECT_TRUE(all_close("running_var", bn.h.arena.param(bn.h.id("running_var")), {0.99, 0.99},
                        1e-7, 1e-6));
}

// With the single-process communicator and sync_bn the statistics are the local ones.
TEST(BatchNormCpu, SingleProcessSyncMatchesLocal) {
  const Shape xs{3, 2, 3, 3};
  Bn a(xs), b(xs);
  auto comm = make_single_process_communicator();
  b.h.ctx.comm = comm.get();
  b.h.ctx.sync_bn = true;
  std::vector<float> x = channel_data(xs, 9), dy = random_vector(xs.size(), 10), ya, yb, dxa, dxb;
  a.h.forward(x, xs, ya, true);
  b.h.forward(x, xs, yb, true);
  EXPECT_EQ(ya, yb);
  a.h.backward(x, xs, ya, dy, dxa);
  b.h.backward(x, xs, yb, dy, dxb);
  EXPECT_EQ(dxa, dxb);
  EXPECT_EQ(a.grad("weight"), b.grad("weight"));
}

// Counts the all-reduces (identity sums) of a communicator that reports `size` ranks.
class CountingCommunicator final : public FakeCommunicator {
 public:
  explicit CountingCommunicator(int size) : FakeCommunicator(size) {}
  void allreduce_sum(float*, size_t) override { ++allreduces; }
  void allreduce_sum(double*, size_t) override { ++allreduces; }
  void start_allreduce_sum(float*, size_t) override { ++allreduces; }
  int allreduces = 0;
};

// SyncBN all-reduces its statistics only when there is another rank: a one-rank communicator
// (NCCL's on a one-GPU machine included) is never called.
TEST(BatchNormCpu, SyncBnCallsTheCommunicatorOnlyWithSeveralRanks) {
  const Shape xs{3, 2, 3, 3};
  for (const int size : {1, 2}) {
    Bn bn(xs);
    CountingCommunicator comm(size);
    bn.h.ctx.comm = &comm;
    bn.h.ctx.sync_bn = true;
    EXPECT_EQ(BatchNormBase::sync_across_ranks(bn.h.ctx), size > 1);
    std::vector<float> x = channel_data(xs, 9), dy = random_vector(xs.size(), 10), y, dx;
    bn.h.forward(x, xs, y, true);
    bn.h.backward(x, xs, y, dy, dx);
    EXPECT_EQ(comm.allreduces, size > 1 ? 2 : 0) << size << " rank(s)";
    bn.h.ctx.sync_bn = false;
    EXPECT_FALSE(BatchNormBase::sync_across_ranks(bn.h.ctx));
  }
}

// Partial batch: statistics over the samples given, not over the reserved batch.
TEST(BatchNormCpu, BatchSmallerThanReserved) {
  const Shape xs{2, 2, 3, 3};
  Bn bn(xs, /*reserve_n=*/8);
  std::vector<float> x = channel_data(xs, 12), y, dx, dy = random_vector(xs.size(), 13);
  bn.h.forward(x, xs, y, true);
  const auto gamma = bn.get("weight"), beta = bn.get("bias");
  EXPECT_TRUE(all_close("bn y", y, ref::batchnorm_train_forward(to_double(x), xs, gamma, beta, kEps).y,
                        1e-5, 1e-5, &xs));
  bn.h.backward(x, xs, y, dy, dx);
  const auto g = ref::batchnorm_train_backward(to_double(x), xs, gamma, to_double(dy), kEps);
  EXPECT_TRUE(all_close("bn dx", dx, g.dx, 1e-5 * max_abs(g.dx), 1e-5, &xs));
}

// Planes are split over the threads by samples; each channel's sum still adds its planes in
// sample order, so 1, 2 and 3 threads (uneven splits, splits inside a sample) give the same
// bits: outputs, input gradient, γ/β gradients, running statistics.
TEST(BatchNormCpu, SameBitsOnAnyThreadCount) {
  const Shape xs{7, 3, 5, 6};
  const std::vector<float> x0 = channel_data(xs, 21), dy0 = random_vector(xs.size(), 22);
  struct Out {
    std::vector<float> y, dx, dgamma, dbeta;
    std::vector<double> rmean, rvar;
  };
  auto run = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    Bn bn(xs);
    bn.set("weight", {0.7f, -1.2f, 1.9f});
    std::vector<float> x = x0, dy = dy0;
    Out o;
    bn.h.forward(x, xs, o.y, true);
    bn.h.backward(x, xs, o.y, dy, o.dx);
    o.dgamma = bn.grad("weight");
    o.dbeta = bn.grad("bias");
    o.rmean = bn.get("running_mean");
    o.rvar = bn.get("running_var");
    omp_set_num_threads(saved);
    return o;
  };
  const Out one = run(1);
  for (int threads : {2, 3}) {
    const Out o = run(threads);
    EXPECT_EQ(o.y, one.y) << threads << " threads";
    EXPECT_EQ(o.dx, one.dx) << threads << " threads";
    EXPECT_EQ(o.dgamma, one.dgamma) << threads << " threads";
    EXPECT_EQ(o.dbeta, one.dbeta) << threads << " threads";
    EXPECT_EQ(o.rmean, one.rmean) << threads << " threads";
    EXPECT_EQ(o.rvar, one.rvar) << threads << " threads";
  }
}

}  // namespace
}  // namespace mnist_dist::test
