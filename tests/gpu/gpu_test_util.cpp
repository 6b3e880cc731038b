// GPU test helpers (see gpu_test_util.h).
#include "gpu_test_util.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/rng.h"
#include "cuda/cuda_runtime_api.h"
#include "test_util.h"

namespace mnist_dist::test {

CudaContext* gpu_context(std::string* why) {
  static std::string reason;
  static std::unique_ptr<CudaContext> ctx = [] {
    std::unique_ptr<CudaContext> c;
    if (usable_gpu_count(&reason) > 0) {
      c = CudaContext::create(select_local_gpu(0, 1));
      c->set_allow_tf32(false);
    }
    return c;
  }();
  if (why != nullptr) *why = reason;
  return ctx.get();
}

std::vector<float> to_host(const float* device, size_t n) {
  std::vector<float> v(n);
  copy_d2h(v.data(), device, n * sizeof(float));
  return v;
}

::testing::AssertionResult close_to_cpu(const std::string& what, const std::vector<float>& gpu,
                                        const float* cpu, size_t n, const Shape* shape) {
  if (gpu.size() != n)
    return ::testing::AssertionFailure() << what << ": " << gpu.size() << " values, CPU " << n;
  const std::vector<double> ref = to_double(cpu, n);
  return all_close(what + " (GPU vs CPU)", gpu, ref, kAtolScale * std::max(max_abs(ref), 1e-30),
                   kRtol, shape);
}

LayerPair::LayerPair(LayerPtr cpu_layer, LayerPtr gpu_layer, Shape reserve_shape, uint64_t seed,
                     CudaContext* cuda)
    : cpu(std::move(cpu_layer)), gpu(std::move(gpu_layer)) {
  if (cuda == nullptr) cuda = gpu_context(nullptr);
  gpu_ctx.backend = Backend::kCuda;
  gpu_ctx.cuda = cuda;
  for (auto [layer, arena] : {std::pair{cpu.get(), &cpu_arena}, std::pair{gpu.get(), &gpu_arena}}) {
    layer->set_name("l");
    layer->declare(*arena);
    layer->reserve(reserve_shape);
    arena->finalize();
    Rng rng(seed);
    layer->init(*arena, rng);
  }
  gpu_arena.sync_to_device();
  const Shape out = cpu->output_shape(reserve_shape);
  gpu_x = Buffer<float>(Backend::kCuda, reserve_shape.size());
  gpu_dx = Buffer<float>(Backend::kCuda, reserve_shape.size());
  gpu_y = Buffer<float>(Backend::kCuda, out.size());
  gpu_dy = Buffer<float>(Backend::kCuda, out.size());
}

std::vector<float> LayerPair::forward(const std::vector<float>& x, Shape shape, bool training) {
  xs = shape;
  ys = cpu->output_shape(xs);
  EXPECT_EQ(ys, gpu->output_shape(xs));
  cpu_x = x;
  cpu_y.assign(ys.size(), 0.0f);
  Tensor tx{cpu_x.data(), xs}, ty{cpu_y.data(), ys};
  cpu->forward(cpu_ctx, cpu_arena, tx, ty, training);
  gpu_x.upload(x.data(), x.size());
  Tensor gx{gpu_x.data(), xs}, gy{gpu_y.data(), ys};
  gpu->forward(gpu_ctx, gpu_arena, gx, gy, training);
  return to_host(gpu_y.data(), ys.size());
}

std::vector<float> LayerPair::backward(const std::vector<float>& dy, bool want_dx) {
  cpu_dy = dy;
  cpu_dx.assign(want_dx ? xs.size() : 0, 0.0f);
  Tensor tx{cpu_x.data(), xs}, ty{cpu_y.data(), ys}, tdy{cpu_dy.data(), ys};
  Tensor tdx{want_dx ? cpu_dx.data() : nullptr, xs};
  cpu->backward(cpu_ctx, cpu_arena, tx, ty, tdy, tdx);
  gpu_dy.upload(dy.data(), dy.size());
  Tensor gx{gpu_x.data(), xs}, gy{gpu_y.data(), ys}, gdy{gpu_dy.data(), ys};
  Tensor gdx{want_dx ? gpu_dx.data() : nullptr, xs};
  gpu->backward(gpu_ctx, gpu_arena, gx, gy, gdy, gdx);
  return want_dx ? to_host(gpu_dx.data(), xs.size()) : std::vector<float>();
}

::testing::AssertionResult LayerPair::grads_match() {
  const std::vector<float> g = to_host(gpu_arena.grads(), gpu_arena.param_count());
  for (const ParamInfo& p : cpu_arena.infos()) {
    if (!p.trainable) continue;
    const std::vector<float> got(g.begin() + p.offset, g.begin() + p.offset + p.count);
    auto r = close_to_cpu("gradient of " + p.name, got, cpu_arena.grads() + p.offset, p.count);
    if (!r) return r;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult LayerPair::params_and_state_match() {
  gpu_arena.sync_to_host();
  for (const ParamInfo& p : cpu_arena.infos()) {
    const float* host = (p.trainable ? gpu_arena.host_params() : gpu_arena.host_state()) + p.offset;
    const float* ref = (p.trainable ? cpu_arena.params() : cpu_arena.state()) + p.offset;
    auto r = close_to_cpu(p.name, std::vector<float>(host, host + p.count), ref, p.count);
    if (!r) return r;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace mnist_dist::test
