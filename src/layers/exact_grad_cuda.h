// The GPU half of deterministic training's exact sums (layers/exact_grad.h; docs/determinism.md):
// the same per-chunk arithmetic as the CPU kernels (fused multiply-adds in sample order from
// zero, one round-to-nearest-even to int64 counts of 2^-40, int64 back to float once), so a
// chunk's fixed-point contribution is the same integer on a GPU as on a CPU, and the integer sums
// (NCCL's ncclInt64 all-reduce included) cannot depend on their order. All pointers are device
// memory; the work is enqueued on the context's compute stream. Defined in exact_grad_cuda.cu
// (CUDA builds only).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/context.h"
#include "layers/exact_grad.h"

namespace mnist_dist {

namespace exact {

// The range check of exact_grad.h on the device: a kernel that meets a chunk value beyond
// `limit` (exact::chunk_limit(total chunks), in gradient units) or NaN sets *flag (device
// memory) to 1; the caller reads it once per step (train/exact_sync.cpp). A null flag: no check.
struct DeviceRange {
  unsigned* flag = nullptr;
  float limit = 0.0f;
};

// The check for the layers of a step of ctx (ctx.exact_diverged, ctx.total_chunks).
inline DeviceRange device_range(const Context& ctx) {
  return DeviceRange{ctx.exact_diverged, chunk_limit(ctx.total_chunks)};
}

// dyt (out × n) = 2^40 · dy (n × out)ᵀ (exact: a power of two).
void scale_transpose_cuda(const float* dy, int n, int out, float* dyt, CudaContext& ctx);
// dense_weight_grad of exact_grad.h: dw (out × in) and db (out) from dyt (scaled, out × n) and
// x (n × in) in chunks of `chunk` samples; written, or added to with `add`.
void dense_weight_grad_cuda(const float* dyt, const float* x, int n, int out, int in, int chunk, bool add,
                            int64_t* dw, int64_t* db, CudaContext& ctx, DeviceRange range = {});
// acc[i] = to_fixed(v[i]) (+ acc[i] with `add`): one chunk's float gradient (a cuDNN weight
// gradient of one chunk, a BatchNorm chunk sum) into the fixed-point sums.
void fold_cuda(const float* v, size_t n, bool add, int64_t* acc, CudaContext& ctx, DeviceRange range = {});
// out[i] = from_fixed(acc[i]).
void unfold_cuda(const int64_t* acc, size_t n, float* out, CudaContext& ctx);

}  // namespace exact
}  // namespace mnist_dist
