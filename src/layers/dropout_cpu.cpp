// Dropout on CPU: one sample (row) per iteration over the ctx.threads; the mask from
// dropout_mask.h, as the CUDA kernel.
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "layers/backend_cpu.h"
#include "layers/cpu_context.h"
#include "layers/dropout.h"
#include "layers/dropout_mask.h"

namespace mnist_dist {
namespace {

class DropoutCpu final : public DropoutBase {
 public:
  using DropoutBase::DropoutBase;

  void forward(Context& ctx, ParamArena&, const Tensor& x, Tensor& y, bool training) override {
    const Pass p = begin_forward(ctx, training);
    if (!p.dropped) {
      if (y.data != x.data) std::memcpy(y.data, x.data, x.size() * sizeof(float));
      return;
    }
    apply(ctx, p, x.data, y.data, x.shape.n, x.shape.per_sample());
  }

  void backward(Context& ctx, ParamArena&, const Tensor&, const Tensor&, const Tensor& dy, Tensor& dx) override {
    if (dx.data == nullptr) return;
    const Pass& p = last_pass();
    if (!p.dropped) {
      if (dx.data != dy.data) std::memcpy(dx.data, dy.data, dy.size() * sizeof(float));
      return;
    }
    apply(ctx, p, dy.data, dx.data, dy.shape.n, dy.shape.per_sample());
  }

 private:
  // out = in · scale where kept, 0 elsewhere: forward (x → y) and backward (dy → dx) alike.
  void apply(const Context& ctx, const Pass& p, const float* in, float* out, int n, size_t f) const {
    const float s = scale();
    const uint64_t keep = keep_below_;
#pragma omp parallel for num_threads(team_size(ctx)) schedule(static)
    for (int i = 0; i < n; ++i) {
      const uint64_t row = p.first_row + static_cast<uint64_t>(i);
      const float* a = in + static_cast<size_t>(i) * f;
      float* b = out + static_cast<size_t>(i) * f;
      for (size_t j = 0; j < f; ++j) b[j] = dropout_keeps(p.key, row, j, keep) ? a[j] * s : 0.0f;
    }
  }
};

}  // namespace

LayerPtr make_dropout_cpu(const DropoutConfig& cfg) { return std::make_unique<DropoutCpu>(cfg); }

}  // namespace mnist_dist
