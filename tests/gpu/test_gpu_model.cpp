// Training on the GPU against the CPU from the same initial weights and batches (TF32 off):
// the seed net's first-step gradients per tensor within 1e-4 (relative L2), and the weights
// after 5 Adam steps within 1e-3. Left out of both: the convolution biases, which feed
// BatchNorm — their true gradient is 0, so what both backends compute is rounding noise, which
// Adam's normalisation (m/√v) then magnifies into full-size steps.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "gpu_test_util.h"
#include "layers/backend_cuda.h"
#include "layers/softmax_xent.h"
#include "model/model.h"
#include "optim/adam.h"
#include "test_util.h"

namespace mnist_dist::test {
namespace {

double rel_l2(const float* got, const float* ref, size_t n) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(got[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}

bool feeds_batchnorm(const std::string& name) {
  return name == "conv1/bias" || name == "conv2/bias";
}

TEST(GpuModel, SeedNetGradientsAndFiveAdamStepsMatchCpu) {
  MD_REQUIRE_GPU();
  const int n = 64, classes = 10;
  const Shape input{1, 1, 28, 28};
  Model cpu("seed", Backend::kCpu, input, classes, n);
  Model gpu("seed", Backend::kCuda, input, classes, n);
  cpu.init(5);
  gpu.init(5);
  Context cctx, gctx;
  gctx.backend = Backend::kCuda;
  gctx.cuda = gpu_context(nullptr);
  auto cpu_loss = make_softmax_xent(Backend::kCpu);
  auto gpu_loss = make_softmax_xent_cuda();
  const size_t count = cpu.arena().param_count();
  ASSERT_EQ(count, gpu.arena().param_count());
  Adam cpu_adam(AdamConfig{}, count, Backend::kCpu), gpu_adam(AdamConfig{}, count, Backend::kCuda);
  std::vector<float> dlogits(static_cast<size_t>(n) * classes);
  Buffer<float> d_dlogits(Backend::kCuda, dlogits.size()), d_x(Backend::kCuda, n * input.per_sample());
  Buffer<uint8_t> d_labels(Backend::kCuda, n);

  for (int step = 0; step < 5; ++step) {
    // Pixels in [0, 1] like the data; labels spread over the classes.
    const std::vector<float> x = random_vector(n * input.per_sample(), 1000 + step, 0.0, 1.0);
    std::vector<uint8_t> labels(n);
    for (int i = 0; i < n; ++i) labels[i] = static_cast<uint8_t>((i * 3 + step) % classes);
    const float scale = 1.0f / n;

    const Tensor& cl = cpu.forward(cctx, x.data(), n, true);
    const LossStats cs = cpu_loss->run(cctx, cl, labels.data(), scale, dlogits.data(), nullptr);
    cpu.backward(cctx, dlogits.data());

    d_x.upload(x.data(), x.size());
    d_labels.upload(labels.data(), labels.size());
    const Tensor& gl = gpu.forward(gctx, d_x.data(), n, true);
    const LossStats gs = gpu_loss->run(gctx, gl, d_labels.data(), scale, d_dlogits.data(), nullptr);
    gpu.backward(gctx, d_dlogits.data());
    EXPECT_NEAR(gs.loss_sum, cs.loss_sum, 1e-4 * std::fabs(cs.loss_sum)) << "step " << step;

    if (step == 0) {
      const std::vector<float> g = to_host(gpu.arena().grads(), count);
      for (const ParamInfo& p : cpu.arena().infos()) {
        if (!p.trainable || feeds_batchnorm(p.name)) continue;
        EXPECT_LE(rel_l2(g.data() + p.offset, cpu.arena().grads() + p.offset, p.count), 1e-4)
            << "first-step gradient of " << p.name;
      }
    }
    cpu_adam.step(cpu.arena().params(), cpu.arena().grads());
    gpu_adam.step(gctx, gpu.arena().params(), gpu.arena().grads());
  }
  gpu.arena().sync_to_host();
  for (const ParamInfo& p : cpu.arena().infos()) {
    if (feeds_batchnorm(p.name)) continue;
    const float* got = (p.trainable ? gpu.arena().host_params() : gpu.arena().host_state()) + p.offset;
    const float* ref = (p.trainable ? cpu.arena().params() : cpu.arena().state()) + p.offset;
    EXPECT_LE(rel_l2(got, ref, p.count), 1e-3) << p.name << " after 5 Adam steps";
  }
}

}  // namespace
}  // namespace mnist_dist::test
