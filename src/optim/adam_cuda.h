// The fused Adam step on the GPU: one kernel over the whole arena, per element adam::update.
// Defined in adam_cuda.cu (CUDA builds) or adam_cuda_unavailable.cpp (a user error).
#pragma once

#include <cstddef>

#include "optim/adam_math.h"

namespace mnist_dist {

struct CudaContext;

void adam_step_cuda(float* params, const float* grads, float* m, float* v, size_t n,
                    const adam::Coeffs& c, CudaContext& ctx);

}  // namespace mnist_dist
