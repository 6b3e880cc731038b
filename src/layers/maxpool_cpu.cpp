// 2×2/stride-2 max-pooling on CPU, one plane per loop iteration (cpu_simd.h kernels); the
// arg-max of each window is kept for backward.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "layers/backend_cpu.h"
#include "layers/cpu_simd.h"
#include "layers/elementwise.h"
#include "layers/fusion.h"

namespace mnist_dist {
namespace {

class MaxPool2Cpu final : public Layer, public PoolArgmax {
 public:
  uint8_t* argmax() override { return argmax_.data(); }
  std::string kind() const override { return "maxpool2"; }
  std::string describe() const override { return "maxpool 2x2"; }
  Shape output_shape(const Shape& in) const override {
    MD_CHECK(in.h >= 2 && in.w >= 2, "maxpool input too small: " + in.str());
    return Shape{in.n, in.c, in.h / 2, in.w / 2};
  }
  void reserve(const Shape& in) override { argmax_.assign(output_shape(in).size(), 0); }

  void forward(Context&, ParamArena&, const Tensor& x, Tensor& y, bool) override {
    const int planes = x.shape.n * x.shape.c, h = x.shape.h, w = x.shape.w;
    const int oh = y.shape.h, ow = y.shape.w;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < planes; ++p) {
      cpu_simd::maxpool2_forward(x.data + static_cast<size_t>(p) * h * w, h, w,
                                 y.data + static_cast<size_t>(p) * oh * ow,
                                 argmax_.data() + static_cast<size_t>(p) * oh * ow);
    }
  }

  void backward(Context&, ParamArena&, const Tensor& x, const Tensor& y, const Tensor& dy,
                Tensor& dx) override {
    if (dx.data == nullptr) return;
    const int planes = x.shape.n * x.shape.c, h = x.shape.h, w = x.shape.w;
    const int oh = y.shape.h, ow = y.shape.w;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < planes; ++p) {
      cpu_simd::maxpool2_backward(dy.data + static_cast<size_t>(p) * oh * ow,
                                  argmax_.data() + static_cast<size_t>(p) * oh * ow, h, w,
                                  dx.data + static_cast<size_t>(p) * h * w);
    }
  }

 private:
  std::vector<uint8_t> argmax_;  // (N, C, OH, OW): which of the 4 window elements won
};

class FlattenCpu final : public Layer {
 public:
  std::string kind() const override { return "flatten"; }
  std::string describe() const override { return "flatten"; }
  Shape output_shape(const Shape& in) const override {
    return Shape{in.n, static_cast<int>(in.per_sample()), 1, 1};
  }
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
