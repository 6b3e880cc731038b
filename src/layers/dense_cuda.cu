// Dense on the GPU (forward and backward of DenseBase): cuBLAS with dense_cpu.cpp's semantics.
// cuBLAS is column-major: a row-major (r, c) matrix is, to cuBLAS, its (c × r) transpose with
// leading dimension c (the "row-major trick"). With X (N, in), W (out, in), Y (N, out) row-major:
//   Y  = X·Wᵀ + b    ⇔ Yᵀ (out×N)   = W·Xᵀ     gemm(T, N, out, N, in)   A = W, B = X
//   dW = dYᵀ·X       ⇔ dWᵀ (in×out) = Xᵀ·dY    gemm(N, T, in, out, N)   A = X, B = dY
//   dX = dY·W        ⇔ dXᵀ (in×N)   = Wᵀ·dYᵀ   gemm(N, N, in, N, out)   A = W, B = dY
//   db = Σ_rows dY   ⇔ db (out)     = dYᵀ·1    gemv(N, out, N)          A = dY, x = ones
// The bias is broadcast into Y by a small kernel before the forward GEMM (beta = 1).
// Deterministic training (ctx.chunk > 0): the GEMMs of Y and dX run per chunk of samples, so that
// each call has a shape fixed by the global batch (cuBLAS picks its kernel, and so its
// summation order, by shape; atomics stay off, its default); dW and db go per chunk into fixed
// point (layers/exact_grad_cuda.h) instead of the GEMM and GEMV.
#include <algorithm>
#include <vector>

#include "core/error.h"
#include "cuda/buffer.h"
#include "cuda/checks.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_runtime_api.h"
#include "cuda/launch.h"
#include "layers/backend_cuda.h"
#include "layers/dense.h"
#include "layers/exact_grad_cuda.h"

namespace mnist_dist {
namespace {

// y (rows, cols) row-major ← b broadcast along the rows.
static __global__ void broadcast_rows_kernel(const float* __restrict__ b, float* __restrict__ y,
                                             size_t total, int cols) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < total;
       i += size_t{gridDim.x} * blockDim.x)
    y[i] = b[i % cols];
}

void broadcast_rows(const float* b, float* y, int rows, int cols, cudaStream_t s) {
  const size_t total = static_cast<size_t>(rows) * cols;
  if (total == 0) return;
  broadcast_rows_kernel<<<cuda::grid_1d(total), cuda::kBlock, 0, s>>>(b, y, total, cols);
  MD_CUDA_LAUNCH("broadcast_rows_kernel");
}

class DenseCuda final : public DenseBase {
 public:
  explicit DenseCuda(const DenseConfig& c) : DenseBase(c) {}

  void reserve(const Shape& in) override {
    ones_ = Buffer<float>(Backend::kCuda, static_cast<size_t>(in.n));
    dyt_ = Buffer<float>();  // sized by the first deterministic backward
    const std::vector<float> ones(ones_.size(), 1.0f);
    ones_.upload(ones.data(), ones.size());
  }

  void forward(Context& ctx, ParamArena& a, const Tensor& x, Tensor& y, bool) override {
    const int n = x.shape.n, in = cfg_.in_features, out = cfg_.out_features;
    if (n == 0) return;
    CudaContext& cu = *ctx.cuda;
    broadcast_rows(a.param(b_), y.data, n, out, cu.stream());
    const float one = 1.0f;
    const int rows = ctx.chunk > 0 ? ctx.chunk : n;
    for (int r = 0; r < n; r += rows)
      MD_CUBLAS(cublasSgemm(cu.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, out, std::min(rows, n - r), in, &one,
                            a.param(w_), in, x.data + static_cast<size_t>(r) * in, in, &one,
                            y.data + static_cast<size_t>(r) * out, out));
  }

  void backward(Context& ctx, ParamArena& a, const Tensor& x, const Tensor&, const Tensor& dy,
                Tensor& dx) override {
    const int n = x.shape.n, in = cfg_.in_features, out = cfg_.out_features;
    CudaContext& cu = *ctx.cuda;
    float* dw = a.grad(w_);
    float* db = a.grad(b_);
    if (ctx.exact_grads != nullptr) return backward_exact(ctx, a, x, dy, dx);
    if (n == 0) {  // an empty slice contributes zero gradients (backward overwrites)
      MD_CUDA(cudaMemsetAsync(dw, 0, a.info(w_).count * sizeof(float), cu.stream()));
      MD_CUDA(cudaMemsetAsync(db, 0, a.info(b_).count * sizeof(float), cu.stream()));
      return;
    }
    MD_CHECK(static_cast<size_t>(n) <= ones_.size(), "dense batch larger than reserved");
    const float one = 1.0f, zero = 0.0f;
    MD_CUBLAS(cublasSgemm(cu.cublas(), CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, x.data, in,
                          dy.data, out, &zero, dw, in));
    MD_CUBLAS(cublasSgemv(cu.cublas(), CUBLAS_OP_N, out, n, &one, dy.data, out, ones_.data(), 1,
                          &zero, db, 1));
    if (dx.data != nullptr)
      MD_CUBLAS(cublasSgemm(cu.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one, a.param(w_),
                            in, dy.data, out, &zero, dx.data, in));
  }

 private:
  // Deterministic training: dW, db per chunk into the fixed-point sums (written, or added to
  // with ctx.exact_add), dX per chunk.
  void backward_exact(Context& ctx, ParamArena& a, const Tensor& x, const Tensor& dy, Tensor& dx) {
    const int n = x.shape.n, in = cfg_.in_features, out = cfg_.out_features;
    CudaContext& cu = *ctx.cuda;
    int64_t* qw = ctx.exact_grads + (a.grad(w_) - a.grads());
    int64_t* qb = ctx.exact_grads + (a.grad(b_) - a.grads());
    if (n == 0) {  // no chunks here: zero sums, unless adding to a micro-step's
      if (!ctx.exact_add) {
        MD_CUDA(cudaMemsetAsync(qw, 0, a.info(w_).count * sizeof(int64_t), cu.stream()));
        MD_CUDA(cudaMemsetAsync(qb, 0, a.info(b_).count * sizeof(int64_t), cu.stream()));
      }
      return;
    }
    const size_t need = static_cast<size_t>(n) * out;
    if (dyt_.size() < need) dyt_ = Buffer<float>(Backend::kCuda, need);
    exact::scale_transpose_cuda(dy.data, n, out, dyt_.data(), cu);
    exact::dense_weight_grad_cuda(dyt_.data(), x.data, n, out, in, ctx.chunk, ctx.exact_add, qw, qb, cu,
                                  exact::device_range(ctx));
    if (dx.data == nullptr) return;
    const float one = 1.0f, zero = 0.0f;
    for (int r = 0; r < n; r += ctx.chunk)
      MD_CUBLAS(cublasSgemm(cu.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, in, std::min(ctx.chunk, n - r), out, &one,
                            a.param(w_), in, dy.data + static_cast<size_t>(r) * out, out, &zero,
                            dx.data + static_cast<size_t>(r) * in, in));
  }

  Buffer<float> ones_;  // device: (max N) ones for the bias gradient
  Buffer<float> dyt_;   // device, deterministic training: 2^40 · dyᵀ
};

}  // namespace

LayerPtr make_dense_cuda(const DenseConfig& config) { return std::make_unique<DenseCuda>(config); }

}  // namespace mnist_dist
