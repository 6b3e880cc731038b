// ReLU on the GPU: y = max(x, 0); dx = dy where y > 0 (the kink at 0 has derivative 0), as
// relu_cpu.cpp. Grid-stride element-wise kernels on the compute stream.
#include "cuda/checks.h"
#include "cuda/cuda_context.h"
#include "cuda/launch.h"
#include "layers/backend_cuda.h"
#include "layers/elementwise.h"

namespace mnist_dist {
namespace {

static __global__ void relu_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                           size_t n) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x)
    y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static __global__ void relu_backward_kernel(const float* __restrict__ y,
                                            const float* __restrict__ dy, float* __restrict__ dx,
                                            size_t n) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x)
    dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void relu_forward(const float* x, float* y, size_t n, cudaStream_t s) {
  if (n == 0) return;
  relu_forward_kernel<<<cuda::grid_1d(n), cuda::kBlock, 0, s>>>(x, y, n);
  MD_CUDA_LAUNCH("relu_forward_kernel");
}

void relu_backward(const float* y, const float* dy, float* dx, size_t n, cudaStream_t s) {
  if (n == 0) return;
  relu_backward_kernel<<<cuda::grid_1d(n), cuda::kBlock, 0, s>>>(y, dy, dx, n);
  MD_CUDA_LAUNCH("relu_backward_kernel");
}

class ReluCuda final : public ReluBase {
 public:
  void forward(Context& ctx, ParamArena&, const Tensor& x, Tensor& y, bool) override {
    relu_forward(x.data, y.data, x.size(), ctx.cuda->stream());
  }
  void backward(Context& ctx, ParamArena&, const Tensor&, const Tensor& y, const Tensor& dy,
                Tensor& dx) override {
    if (dx.data != nullptr) relu_backward(y.data, dy.data, dx.data, y.size(), ctx.cuda->stream());
  }
};

}  // namespace

LayerPtr make_relu_cuda() { return std::make_unique<ReluCuda>(); }

}  // namespace mnist_dist
