// The fused Adam step on the GPU: one grid-stride kernel over the whole arena, 4 elements per
// thread and iteration (16-byte accesses) when the buffers allow, each through adam::update.
#include <cstdint>

#include "cuda/checks.h"
#include "cuda/cuda_context.h"
#include "cuda/launch.h"
#include "optim/adam_cuda.h"

namespace mnist_dist {
namespace {

static __global__ void adam_kernel4(float4* __restrict__ params, const float4* __restrict__ grads,
                                    float4* __restrict__ m, float4* __restrict__ v, size_t n4,
                                    adam::Coeffs c) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n4;
       i += size_t{gridDim.x} * blockDim.x) {
    float4 p = params[i], mm = m[i], vv = v[i];
    const float4 g = grads[i];
    adam::update(p.x, mm.x, vv.x, g.x, c);
    adam::update(p.y, mm.y, vv.y, g.y, c);
    adam::update(p.z, mm.z, vv.z, g.z, c);
    adam::update(p.w, mm.w, vv.w, g.w, c);
    params[i] = p;
    m[i] = mm;
    v[i] = vv;
  }
}

static __global__ void adam_kernel(float* __restrict__ params, const float* __restrict__ grads,
                                   float* __restrict__ m, float* __restrict__ v, size_t n,
                                   adam::Coeffs c) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x)
    adam::update(params[i], m[i], v[i], grads[i], c);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

void adam_step_cuda(float* params, const float* grads, float* m, float* v, size_t n,
                    const adam::Coeffs& c, CudaContext& ctx) {
  if (n == 0) return;
  MD_CHECK(params != nullptr && grads != nullptr && m != nullptr && v != nullptr,
           "adam_step_cuda: null buffer");
  const cudaStream_t s = ctx.stream();
  if (n % 4 == 0 && aligned16(params) && aligned16(grads) && aligned16(m) && aligned16(v)) {
    const size_t n4 = n / 4;
    adam_kernel4<<<cuda::grid_1d(n4), cuda::kBlock, 0, s>>>(
        reinterpret_cast<float4*>(params), reinterpret_cast<const float4*>(grads),
        reinterpret_cast<float4*>(m), reinterpret_cast<float4*>(v), n4, c);
    MD_CUDA_LAUNCH("adam_kernel4");
  } else {
    adam_kernel<<<cuda::grid_1d(n), cuda::kBlock, 0, s>>>(params, grads, m, v, n, c);
    MD_CUDA_LAUNCH("adam_kernel");
  }
}

}  // namespace mnist_dist
