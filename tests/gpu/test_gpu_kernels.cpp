// The fused kernels against the CPU: Adam over a flat buffer (vector and scalar paths, several
// steps) and softmax cross-entropy (loss, accuracy, dlogits, predictions; more rows than
// threads; evaluation without gradients; an empty batch).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "cuda/cuda_runtime_api.h"
#include "gpu_test_util.h"
#include "layers/backend_cuda.h"
#include "layers/softmax_xent.h"
#include "optim/adam.h"
#include "optim/adam_cuda.h"
#include "test_util.h"

namespace mnist_dist::test {
namespace {

TEST(GpuAdam, StepsMatchTheCpuLoop) {
  MD_REQUIRE_GPU();
  CudaContext& cuda = *gpu_context(nullptr);
  for (size_t n : {size_t{4096}, size_t{1001}}) {  // float4 path, scalar path
    std::vector<float> params = random_vector(n, 1), cpu_params = params;
    Adam cpu(AdamConfig{}, n);
    Buffer<float> d_params = to_device(params), d_grads(Backend::kCuda, n),
                  m(Backend::kCuda, n), v(Backend::kCuda, n);
    for (int64_t t = 1; t <= 4; ++t) {
      std::vector<float> grads = random_vector(n, 100 + t);
      for (size_t i = 0; i < n; i += 5) grads[i] = 0.0f;  // zero-gradient coordinates too
      cpu.step(cpu_params.data(), grads.data());
      d_grads.upload(grads.data(), n);
      adam_step_cuda(d_params.data(), d_grads.data(), m.data(), v.data(), n, cpu.coeffs(t), cuda);
    }
    EXPECT_TRUE(close_to_cpu("params after 4 steps, n " + std::to_string(n), to_host(d_params, n),
                             cpu_params.data(), n));
    EXPECT_TRUE(close_to_cpu("m", to_host(m, n), cpu.m(), n));
    EXPECT_TRUE(close_to_cpu("v", to_host(v, n), cpu.v(), n));
  }
}

struct XentRun {
  LossStats stats;
  std::vector<float> dlogits;
  std::vector<int32_t> predictions;
};

XentRun run_xent(SoftmaxCrossEntropy& loss, Context& ctx, bool device, std::vector<float> logits,
                 const std::vector<uint8_t>& labels, int k, float scale, bool with_grad) {
  const int n = static_cast<int>(labels.size());
  XentRun r;
  r.dlogits.assign(with_grad ? logits.size() : 0, 0.0f);
  r.predictions.assign(labels.size(), -1);
  if (!device) {
    Tensor t{logits.data(), {n, k, 1, 1}};
    r.stats = loss.run(ctx, t, labels.data(), scale, with_grad ? r.dlogits.data() : nullptr,
                       r.predictions.data());
    return r;
  }
  Buffer<float> d_logits = to_device(logits), d_dlogits(Backend::kCuda, logits.size());
  Buffer<uint8_t> d_labels = to_device(labels);
  Buffer<int32_t> d_pred(Backend::kCuda, labels.size());
  Tensor t{d_logits.data(), {n, k, 1, 1}};
  r.stats = loss.run(ctx, t, d_labels.data(), scale, with_grad ? d_dlogits.data() : nullptr,
                     d_pred.data());
  if (with_grad) r.dlogits = to_host(d_dlogits, logits.size());
  r.predictions = to_host(d_pred, labels.size());
  return r;
}

TEST(GpuSoftmaxXent, LossAccuracyGradientsAndPredictionsMatchCpu) {
  MD_REQUIRE_GPU();
  Context cpu_ctx, gpu_ctx;
  gpu_ctx.backend = Backend::kCuda;
  gpu_ctx.cuda = gpu_context(nullptr);
  auto cpu = make_softmax_xent(Backend::kCpu);
  auto gpu = make_softmax_xent_cuda();
  const int k = 10;
  for (int n : {37, 2500}) {
    std::vector<float> logits = random_vector(static_cast<size_t>(n) * k, 7 + n, -4.0, 4.0);
    std::vector<uint8_t> labels(n);
    for (int i = 0; i < n; ++i) labels[i] = static_cast<uint8_t>((i * 7 + n) % k);
    for (bool with_grad : {true, false}) {
      const float scale = 1.0f / static_cast<float>(n);
      const XentRun c = run_xent(*cpu, cpu_ctx, false, logits, labels, k, scale, with_grad);
      const XentRun g = run_xent(*gpu, gpu_ctx, true, logits, labels, k, scale, with_grad);
      EXPECT_NEAR(g.stats.loss_sum, c.stats.loss_sum, 1e-5 * std::fabs(c.stats.loss_sum)) << n;
      EXPECT_EQ(g.stats.correct, c.stats.correct);
      EXPECT_EQ(g.stats.count, c.stats.count);
      EXPECT_EQ(g.predictions, c.predictions);
      if (with_grad) {
        EXPECT_TRUE(close_to_cpu("dlogits", g.dlogits, c.dlogits.data(), c.dlogits.size()));
      }
    }
  }
  const XentRun empty = run_xent(*gpu, gpu_ctx, true, {}, {}, k, 1.0f, true);
  EXPECT_EQ(empty.stats.count, 0);
  EXPECT_EQ(empty.stats.loss_sum, 0.0);
}

}  // namespace
}  // namespace mnist_dist::test
