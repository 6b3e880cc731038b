// 2×2/stride-2 max-pooling and Flatten on the GPU, with maxpool_cpu.cpp's semantics: scan order
// (0,0), (0,1), (1,0), (1,1) with strict '>' so the first maximum wins on ties, and the winner
// kept for backward. Own kernels rather than cuDNN, whose backward pass does not promise where
// the gradient of a tied window goes. Backward is a gather over the input (every dx element
// written once, no memset, deterministic).
#include <cstdint>

#include "core/error.h"
#include "cuda/buffer.h"
#include "cuda/checks.h"
#include "cuda/cuda_context.h"
#include "cuda/launch.h"
#include "layers/backend_cuda.h"
#include "layers/elementwise.h"
#include "layers/math/pool_math.h"

namespace mnist_dist {
namespace {

// One thread per output element of (planes = N·C, OH, OW); argmax ∈ {0..3} = 2·dy + dx.
static __global__ void maxpool2_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                               uint8_t* __restrict__ argmax, size_t total, int h,
                                               int w, int oh, int ow) {
  for (size_t o = blockIdx.x * size_t{blockDim.x} + threadIdx.x; o < total;
       o += size_t{gridDim.x} * blockDim.x) {
    const int ox = static_cast<int>(o % ow);
    const int oy = static_cast<int>(o / ow % oh);
    const size_t plane = o / (static_cast<size_t>(ow) * oh);
    const float* r0 = x + plane * h * w + static_cast<size_t>(2 * oy) * w + 2 * ox;
    float best;
    argmax[o] = pool::window_max(r0, r0 + w, best);
    y[o] = best;
  }
}

// One thread per input element: its window's gradient if it won the window, else 0 (also for
// the odd last row/column that no window covers).
static __global__ void maxpool2_backward_kernel(const float* __restrict__ dy,
                                                const uint8_t* __restrict__ argmax,
                                                float* __restrict__ dx, size_t total, int h, int w,
                                                int oh, int ow) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < total;
       i += size_t{gridDim.x} * blockDim.x) {
    const int ix = static_cast<int>(i % w);
    const int iy = static_cast<int>(i / w % h);
    const size_t plane = i / (static_cast<size_t>(w) * h);
    const int oy = iy >> 1, ox = ix >> 1;
    float g = 0.0f;
    if (oy < oh && ox < ow) {
      const size_t o = plane * oh * ow + static_cast<size_t>(oy) * ow + ox;
      if (argmax[o] == ((iy & 1) << 1 | (ix & 1))) g = dy[o];
    }
    dx[i] = g;
  }
}

class MaxPool2Cuda final : public MaxPool2Base {
 public:
  void reserve(const Shape& in) override {
    argmax_ = Buffer<uint8_t>(Backend::kCuda, output_shape(in).size());
  }

  void forward(Context& ctx, ParamArena&, const Tensor& x, Tensor& y, bool) override {
    const size_t total = y.size();
    if (total == 0) return;
    MD_CHECK(total <= argmax_.size(), "maxpool batch larger than reserved");
    maxpool2_forward_kernel<<<cuda::grid_1d(total), cuda::kBlock, 0, ctx.cuda->stream()>>>(
        x.data, y.data, argmax_.data(), total, x.shape.h, x.shape.w, y.shape.h, y.shape.w);
    MD_CUDA_LAUNCH("maxpool2_forward_kernel");
  }

  void backward(Context& ctx, ParamArena&, const Tensor& x, const Tensor& y, const Tensor& dy,
                Tensor& dx) override {
    const size_t total = x.size();
    if (dx.data == nullptr || total == 0) return;
    maxpool2_backward_kernel<<<cuda::grid_1d(total), cuda::kBlock, 0, ctx.cuda->stream()>>>(
        dy.data, argmax_.data(), dx.data, total, x.shape.h, x.shape.w, y.shape.h, y.shape.w);
    MD_CUDA_LAUNCH("maxpool2_backward_kernel");
  }

 private:
  Buffer<uint8_t> argmax_;  // (N, C, OH, OW) on the device: which of the 4 window elements won
};

// NCHW → (N, C·H·W, 1, 1): the same bytes; a device-to-device copy on the compute stream.
class FlattenCuda final : public FlattenBase {
 public:
  void forward(Context& ctx, ParamArena&, const Tensor& x, Tensor& y, bool) override {
    copy(ctx, x.data, y.data, x.size());
  }
  void backward(Context& ctx, ParamArena&, const Tensor&, const Tensor&, const Tensor& dy,
                Tensor& dx) override {
    if (dx.data != nullptr) copy(ctx, dy.data, dx.data, dy.size());
  }

 private:
  static void copy(Context& ctx, const float* src, float* dst, size_t n) {
    if (n == 0 || src == dst) return;
    MD_CUDA(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice,
                            ctx.cuda->stream()));
  }
};

}  // namespace

LayerPtr make_maxpool2_cuda() { return std::make_unique<MaxPool2Cuda>(); }
LayerPtr make_flatten_cuda() { return std::make_unique<FlattenCuda>(); }

}  // namespace mnist_dist
