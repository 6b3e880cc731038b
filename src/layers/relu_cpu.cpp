// ReLU on CPU: y = max(x, 0); dx = dy where y > 0 (the kink at 0 has derivative 0).
#include "layers/backend_cpu.h"
#include "layers/elementwise.h"

namespace mnist_dist {
namespace {

class ReluCpu final : public Layer {
 public:
  std::string kind() const override { return "relu"; }
  std::string describe() const override { return "relu"; }
  Shape output_shape(const Shape& in) const override { return in; }

  void forward(Context&, ParamArena&, const Tensor& x, Tensor& y, bool) override {
    const long n = static_cast<long>(x.size());
    const float* in = x.data;
    float* out = y.data;
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; ++i) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
  }

  void backward(Context&, ParamArena&, const Tensor&, const Tensor& y, const Tensor& dy,
                Tensor& dx) override {
    if (dx.data == nullptr) return;
    const long n = static_cast<long>(y.size());
    const float* out = y.data;
    const float* g = dy.data;
    float* d = dx.data;
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; ++i) d[i] = out[i] > 0.0f ? g[i] : 0.0f;
  }
};

}  // namespace

LayerPtr make_relu_cpu() { return std::make_unique<ReluCpu>(); }

}  // namespace mnist_dist
