// Shared helpers of the GPU tests: the one CUDA context of a test binary (TF32 off, so fp32
// results compare with the CPU at 1e-4), the skip-with-reason guard, device vectors, and a
// CPU/GPU pair of one layer built and initialised identically (the CPU layer is the oracle).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/context.h"
#include "cuda/buffer.h"
#include "cuda/cuda_context.h"
#include "layers/layer.h"
#include "layers/param_arena.h"

namespace mnist_dist::test {

// The binary's CUDA context on GPU 0 (created on first use, TF32 off), or nullptr with the
// reason in *why when no GPU is usable.
CudaContext* gpu_context(std::string* why);

// First statement of every GPU test: skips it (reported as skipped, not passed) without a GPU.
#define MD_REQUIRE_GPU()                                               \
  do {                                                                 \
    std::string md_why_;                                               \
    if (::mnist_dist::test::gpu_context(&md_why_) == nullptr)          \
      GTEST_SKIP() << "no usable GPU: " << md_why_;                    \
  } while (0)

// Device copies of host vectors and back.
template <typename T>
Buffer<T> to_device(const std::vector<T>& v) {
  Buffer<T> b(Backend::kCuda, v.size());
  b.upload(v.data(), v.size());
  return b;
}
template <typename T>
std::vector<T> to_host(const Buffer<T>& b, size_t n) {
  std::vector<T> v(n);
  b.download(v.data(), n);
  return v;
}
std::vector<float> to_host(const float* device, size_t n);

// Relative tolerances of the fp32 comparisons: |gpu − cpu| ≤ kAtolScale·max|cpu| + kRtol·|cpu|.
constexpr double kRtol = 1e-4;
constexpr double kAtolScale = 1e-5;
::testing::AssertionResult close_to_cpu(const std::string& what, const std::vector<float>& gpu,
                                        const float* cpu, size_t n, const Shape* shape = nullptr);

// One layer on both backends: same name ("l"), declare, reserve(in), finalize, init from the
// same seed (the GPU layer writes the host copies, which are then uploaded).
struct LayerPair {
  // cuda: the context to use (default: gpu_context()).
  LayerPair(LayerPtr cpu_layer, LayerPtr gpu_layer, Shape reserve_shape, uint64_t seed = 7,
            CudaContext* cuda = nullptr);

  // Forward on both with the same host input; returns the GPU output (host copy) and leaves the
  // CPU output in cpu_y.
  std::vector<float> forward(const std::vector<float>& x, Shape xs, bool training);
  // Backward on both after forward; returns the GPU dx (empty when !want_dx), CPU's in cpu_dx.
  std::vector<float> backward(const std::vector<float>& dy, bool want_dx = true);

  // Compares the gradients of every trainable tensor, and the parameters and state (running
  // statistics) of every tensor.
  ::testing::AssertionResult grads_match();
  ::testing::AssertionResult params_and_state_match();

  LayerPtr cpu, gpu;
  ParamArena cpu_arena{Backend::kCpu}, gpu_arena{Backend::kCuda};
  Context cpu_ctx, gpu_ctx;
  Shape xs, ys;
  std::vector<float> cpu_x, cpu_y, cpu_dy, cpu_dx;
  Buffer<float> gpu_x, gpu_y, gpu_dy, gpu_dx;
};

}  // namespace mnist_dist::test
