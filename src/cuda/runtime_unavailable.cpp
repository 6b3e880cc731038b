// CUDA runtime entry points for builds without CUDA: no GPU; memory requests are user errors.
#include "core/error.h"
#include "cuda/cuda_runtime_api.h"
#include "optim/adam_cuda.h"

namespace mnist_dist {
namespace {
[[noreturn]] void no_cuda() {
  throw UserError("this mnist_dist was built without CUDA: rebuild with nvcc, cuDNN and NCCL "
                  "available (-DMNIST_DIST_CUDA=ON), or use --device cpu");
}
}  // namespace

int usable_gpu_count(std::string* why) {
  if (why != nullptr) *why = "this build has no CUDA backend";
  return 0;
}
void* device_alloc(size_t) { no_cuda(); }
void device_free(void*) {}
void copy_h2d(void*, const void*, size_t) { no_cuda(); }
void copy_d2h(void*, const void*, size_t) { no_cuda(); }
void device_memset0(void*, size_t) { no_cuda(); }
void* pinned_alloc(size_t) { no_cuda(); }
void pinned_free(void*) {}
void device_synchronize() {}
void adam_step_cuda(float*, const float*, float*, float*, size_t, const adam::Coeffs&, CudaContext&) {
  no_cuda();
}

}  // namespace mnist_dist
