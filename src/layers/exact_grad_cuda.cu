// GPU kernels of layers/exact_grad_cuda.h. fmaf is the correctly rounded fused multiply-add (as
// std::fma and vfmadd on the CPU); __float2ll_rn rounds to nearest even (as llrint under the
// default rounding mode and vcvtps2qq); __ll2float_rn rounds int64 to float to nearest even (as
// cvtsi2ss and vcvtqq2ps). One thread per element of dW: its chunks in order, each chunk's
// samples in order.
#include "cuda/checks.h"
#include "cuda/cuda_context.h"
#include "cuda/launch.h"
#include "layers/exact_grad.h"
#include "layers/exact_grad_cuda.h"

namespace mnist_dist::exact {
namespace {

// The range check (DeviceRange): v is one chunk's value in units of `scale` (1, or 2^40 for
// values already in fixed-point units).
static __device__ void check_value(float v, float scale, DeviceRange range) {
  if (range.flag != nullptr && !(fabsf(v) <= range.limit * scale)) atomicOr(range.flag, 1u);
}

static __global__ void scale_transpose_kernel(const float* __restrict__ dy, int n, int out, float* __restrict__ dyt) {
  const size_t total = static_cast<size_t>(n) * out;
  for (size_t k = blockIdx.x * size_t{blockDim.x} + threadIdx.x; k < total; k += size_t{gridDim.x} * blockDim.x) {
    const size_t o = k / n, s = k % n;  // write dyt in order (coalesced), read dy strided
    dyt[k] = dy[s * out + o] * kToFixed;
  }
}

static __global__ void dense_weight_kernel(const float* __restrict__ dyt, const float* __restrict__ x, int n, int out,
                                           int in, int chunk, bool add, int64_t* __restrict__ dw, DeviceRange range) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x, o = blockIdx.y;
  if (i >= in || o >= out) return;
  const float* d = dyt + static_cast<size_t>(o) * n;
  unsigned long long q = add ? static_cast<unsigned long long>(dw[static_cast<size_t>(o) * in + i]) : 0ull;
  for (int s0 = 0; s0 < n; s0 += chunk) {
    const int s1 = min(n, s0 + chunk);
    float f = 0.0f;
    for (int s = s0; s < s1; ++s) f = fmaf(d[s], x[static_cast<size_t>(s) * in + i], f);
    check_value(f, kToFixed, range);
    q += static_cast<unsigned long long>(__float2ll_rn(f));  // unsigned: wraps like int64 adds
  }
  dw[static_cast<size_t>(o) * in + i] = static_cast<int64_t>(q);
}

static __global__ void dense_bias_kernel(const float* __restrict__ dyt, int n, int out, int chunk, bool add,
                                         int64_t* __restrict__ db, DeviceRange range) {
  const int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= out) return;
  const float* d = dyt + static_cast<size_t>(o) * n;
  unsigned long long q = add ? static_cast<unsigned long long>(db[o]) : 0ull;
  for (int s0 = 0; s0 < n; s0 += chunk) {
    float f = 0.0f;
    for (int s = s0; s < min(n, s0 + chunk); ++s) f += d[s];  // plain adds, as on the CPU
    check_value(f, kToFixed, range);
    q += static_cast<unsigned long long>(__float2ll_rn(f));
  }
  db[o] = static_cast<int64_t>(q);
}

static __global__ void fold_kernel(const float* __restrict__ v, size_t n, bool add, int64_t* __restrict__ acc,
                                   DeviceRange range) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
    check_value(v[i], 1.0f, range);
    const unsigned long long q = static_cast<unsigned long long>(__float2ll_rn(v[i] * kToFixed));
    acc[i] = static_cast<int64_t>(add ? static_cast<unsigned long long>(acc[i]) + q : q);
  }
}

static __global__ void unfold_kernel(const int64_t* __restrict__ acc, size_t n, float* __restrict__ out) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x)
    out[i] = __ll2float_rn(acc[i]) * kFromFixed;
}

}  // namespace

void scale_transpose_cuda(const float* dy, int n, int out, float* dyt, CudaContext& ctx) {
  const size_t total = static_cast<size_t>(n) * out;
  if (total == 0) return;
  scale_transpose_kernel<<<cuda::grid_1d(total), cuda::kBlock, 0, ctx.stream()>>>(dy, n, out, dyt);
  MD_CUDA_LAUNCH("scale_transpose_kernel");
}

void dense_weight_grad_cuda(const float* dyt, const float* x, int n, int out, int in, int chunk, bool add,
                            int64_t* dw, int64_t* db, CudaContext& ctx, DeviceRange range) {
  if (out == 0 || in == 0) return;
  const dim3 grid(static_cast<unsigned>(cuda::ceil_div(static_cast<size_t>(in), cuda::kBlock)), static_cast<unsigned>(out));
  dense_weight_kernel<<<grid, cuda::kBlock, 0, ctx.stream()>>>(dyt, x, n, out, in, chunk, add, dw, range);
  MD_CUDA_LAUNCH("dense_weight_kernel");
  dense_bias_kernel<<<cuda::grid_1d(static_cast<size_t>(out)), cuda::kBlock, 0, ctx.stream()>>>(dyt, n, out, chunk, add, db, range);
  MD_CUDA_LAUNCH("dense_bias_kernel");
}

void fold_cuda(const float* v, size_t n, bool add, int64_t* acc, CudaContext& ctx, DeviceRange range) {
  if (n == 0) return;
  fold_kernel<<<cuda::grid_1d(n), cuda::kBlock, 0, ctx.stream()>>>(v, n, add, acc, range);
  MD_CUDA_LAUNCH("fold_kernel");
}

void unfold_cuda(const int64_t* acc, size_t n, float* out, CudaContext& ctx) {
  if (n == 0) return;
  unfold_kernel<<<cuda::grid_1d(n), cuda::kBlock, 0, ctx.stream()>>>(acc, n, out);
  MD_CUDA_LAUNCH("unfold_kernel");
}

}  // namespace mnist_dist::exact
