// The GPU Adam step for builds without CUDA: a user error (cuda/runtime_unavailable.cpp).
#include "cuda/cuda_runtime_api.h"
#include "optim/adam_cuda.h"

namespace mnist_dist {

void adam_step_cuda(float*, const float*, float*, float*, size_t, const adam::Coeffs&, CudaContext&) {
  no_cuda();
}

}  // namespace mnist_dist
