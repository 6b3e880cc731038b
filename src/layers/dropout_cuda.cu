// Dropout on the GPU: a grid-stride kernel over (row, unit) with the mask of dropout_mask.h, so
// that it equals the CPU's bit for bit (the scaling is one float multiply on both).
#include "cuda/checks.h"
#include "cuda/cuda_context.h"
#include "cuda/launch.h"
#include "layers/backend_cuda.h"
#include "layers/dropout.h"
#include "layers/dropout_mask.h"

namespace mnist_dist {
namespace {

static __global__ void dropout_kernel(const float* __restrict__ in, float* __restrict__ out, size_t n_elems,
                                      size_t features, uint64_t key, uint64_t first_row, uint64_t keep, float s) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n_elems; i += size_t{gridDim.x} * blockDim.x) {
    const size_t row = i / features, unit = i % features;
    out[i] = dropout_keeps(key, first_row + row, unit, keep) ? in[i] * s : 0.0f;
  }
}

class DropoutCuda final : public DropoutBase {
 public:
  using DropoutBase::DropoutBase;

  void forward(Context& ctx, ParamArena&, const Tensor& x, Tensor& y, bool training) override {
    const Pass p = begin_forward(ctx, training);
    run(ctx, p, x.data, y.data, x.size(), x.shape.per_sample());
  }

  void backward(Context& ctx, ParamArena&, const Tensor&, const Tensor&, const Tensor& dy, Tensor& dx) override {
    if (dx.data != nullptr) run(ctx, last_pass(), dy.data, dx.data, dy.size(), dy.shape.per_sample());
  }

 private:
  void run(Context& ctx, const Pass& p, const float* in, float* out, size_t n, size_t f) const {
    if (n == 0) return;
    cudaStream_t s = ctx.cuda->stream();
    if (!p.dropped) {
      if (out != in) MD_CUDA(cudaMemcpyAsync(out, in, n * sizeof(float), cudaMemcpyDeviceToDevice, s));
      return;
    }
    dropout_kernel<<<cuda::grid_1d(n), cuda::kBlock, 0, s>>>(in, out, n, f, p.key, p.first_row, keep_below_, scale());
    MD_CUDA_LAUNCH("dropout_kernel");
  }
};

}  // namespace

LayerPtr make_dropout_cuda(const DropoutConfig& cfg) { return std::make_unique<DropoutCuda>(cfg); }

}  // namespace mnist_dist
