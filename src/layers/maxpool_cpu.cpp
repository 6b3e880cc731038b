// 2×2/stride-2 max-pooling and Flatten on CPU (forward and backward of their bases): pooling
// one plane per loop iteration over the ctx.threads (cpu_simd.h kernels), the arg-max of each
// window kept for backward.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "layers/backend_cpu.h"
#include "layers/cpu_context.h"
#include "layers/cpu_simd.h"
#include "layers/elementwise.h"
#include "layers/fusion.h"

namespace mnist_dist {
namespace {

class MaxPool2Cpu final : public MaxPool2Base, public PoolArgmax {
 public:
  uint8_t* argmax() override { return argmax_.data(); }
  PoolArgmax* pool_argmax() override { return this; }
  void reserve(const Shape& in) override { argmax_.assign(output_shape(in).size(), 0); }

  void forward(Context& ctx, ParamArena&, const Tensor& x, Tensor& y, bool) override {
    const int planes = x.shape.n * x.shape.c, h = x.shape.h, w = x.shape.w;
    const int oh = y.shape.h, ow = y.shape.w;
    const bool avx = use_avx512(ctx);
#pragma omp parallel for schedule(static) num_threads(team_size(ctx))
    for (int p = 0; p < planes; ++p) {
      cpu_simd::maxpool2_forward(avx, x.data + static_cast<size_t>(p) * h * w, h, w,
                                 y.data + static_cast<size_t>(p) * oh * ow,
                                 argmax_.data() + static_cast<size_t>(p) * oh * ow);
    }
  }

  void backward(Context& ctx, ParamArena&, const Tensor& x, const Tensor& y, const Tensor& dy,
                Tensor& dx) override {
    if (dx.data == nullptr) return;
    const int planes = x.shape.n * x.shape.c, h = x.shape.h, w = x.shape.w;
    const int oh = y.shape.h, ow = y.shape.w;
    const bool avx = use_avx512(ctx);
#pragma omp parallel for schedule(static) num_threads(team_size(ctx))
    for (int p = 0; p < planes; ++p) {
      cpu_simd::maxpool2_backward(avx, dy.data + static_cast<size_t>(p) * oh * ow,
                                  argmax_.data() + static_cast<size_t>(p) * oh * ow, h, w,
                                  dx.data + static_cast<size_t>(p) * h * w);
    }
  }

 private:
  std::vector<uint8_t> argmax_;  // (N, C, OH, OW): which of the 4 window elements won
};

// NCHW → (N, C·H·W, 1, 1): the same bytes, copied.
class FlattenCpu final : public FlattenBase {
 public:
  void forward(Context&, ParamArena&, const Tensor& x, Tensor& y, bool) override {
    std::copy_n(x.data, x.size(), y.data);
  }
  void backward(Context&, ParamArena&, const Tensor&, const Tensor&, const Tensor& dy,
                Tensor& dx) override {
    if (dx.data != nullptr) std::copy_n(dy.data, dy.size(), dx.data);
  }
};

}  // namespace

LayerPtr make_maxpool2_cpu() { return std::make_unique<MaxPool2Cpu>(); }
LayerPtr make_flatten_cpu() { return std::make_unique<FlattenCpu>(); }

}  // namespace mnist_dist
