// Gradient accumulation (train/grad_accumulator.h).
#include "train/grad_accumulator.h"

#include <algorithm>

#include "cuda/cuda_runtime_api.h"

namespace mnist_dist {

void GradAccumulator::take(Context& ctx, const float* grads, bool first) {
  float* sum = sum_.data();
  const size_t n = sum_.size();
  if (ctx.backend == Backend::kCuda) {
    if (first) device_copy_async(*ctx.cuda, sum, grads, n);
    else device_add_async(*ctx.cuda, sum, grads, n);
    return;
  }
  if (first) {
    std::copy(grads, grads + n, sum);
    return;
  }
#pragma omp parallel for simd schedule(static) num_threads(ctx.threads)
  for (size_t i = 0; i < n; ++i) sum[i] += grads[i];
}

void GradAccumulator::add_to(Context& ctx, float* grads, size_t begin, size_t end) const {
  if (end <= begin) return;
  const float* sum = sum_.data();
  if (ctx.backend == Backend::kCuda) {
    device_add_async(*ctx.cuda, grads + begin, sum + begin, end - begin);
    return;
  }
  for (size_t i = begin; i < end; ++i) grads[i] += sum[i];
}

}  // namespace mnist_dist
