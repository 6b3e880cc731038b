// ReLU on CPU: y = max(x, 0); dx = dy where y > 0 (the kink at 0 has derivative 0). The
// ctx.threads take contiguous 64-byte-aligned blocks; the loops are in cpu_simd.h.
#include <omp.h>

#include <algorithm>

#include "layers/backend_cpu.h"
#include "layers/cpu_context.h"
#include "layers/cpu_simd.h"
#include "layers/elementwise.h"

namespace mnist_dist {
namespace {

// Elements [begin, end) of n for thread t of `threads`, split at multiples of 16.
inline void block16(size_t n, int t, int threads, size_t& begin, size_t& end) {
  const size_t blocks = (n + 15) / 16;
  begin = std::min(n, blocks * t / threads * 16);
  end = std::min(n, blocks * (t + 1) / threads * 16);
}

class ReluCpu final : public ReluBase {
 public:
  void forward(Context& ctx, ParamArena&, const Tensor& x, Tensor& y, bool) override {
    const size_t n = x.size();
    const bool avx = use_avx512(ctx);
#pragma omp parallel num_threads(team_size(ctx))
    {
      size_t b = 0, e = 0;
      block16(n, omp_get_thread_num(), omp_get_num_threads(), b, e);
      if (e > b) cpu_simd::relu_forward(avx, x.data + b, e - b, y.data + b);
    }
  }

  void backward(Context& ctx, ParamArena&, const Tensor&, const Tensor& y, const Tensor& dy,
                Tensor& dx) override {
    if (dx.data == nullptr) return;
    const size_t n = y.size();
    const bool avx = use_avx512(ctx);
#pragma omp parallel num_threads(team_size(ctx))
    {
      size_t b = 0, e = 0;
      block16(n, omp_get_thread_num(), omp_get_num_threads(), b, e);
      if (e > b) cpu_simd::relu_backward(avx, y.data + b, dy.data + b, e - b, dx.data + b);
    }
  }
};

}  // namespace

LayerPtr make_relu_cpu() { return std::make_unique<ReluCpu>(); }

}  // namespace mnist_dist
