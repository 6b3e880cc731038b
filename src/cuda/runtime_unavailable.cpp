// CUDA runtime entry points for builds without CUDA: no GPU; everything else is a user error.
#include "core/error.h"
#include "cuda/cuda_runtime_api.h"

namespace mnist_dist {
void no_cuda() {
  throw UserError("this mnist_dist was built without CUDA: rebuild with nvcc, cuDNN, NCCL and MPI "
                  "available (-DMNIST_DIST_CUDA=ON), or use --device cpu");
}

int usable_gpu_count(std::string* why) {
  if (why != nullptr) *why = "built without CUDA";
  return 0;
}
int select_local_gpu(int, int, bool) { no_cuda(); }
void* device_alloc(size_t) { no_cuda(); }
void device_free(void*) {}
void copy_h2d(void*, const void*, size_t) { no_cuda(); }
void copy_d2h(void*, const void*, size_t) { no_cuda(); }
void device_memset0(void*, size_t) { no_cuda(); }
void* pinned_alloc(size_t) { no_cuda(); }
void pinned_free(void*) {}
void device_synchronize() {}
void upload_async(CudaContext&, int, void*, const void*, size_t) { no_cuda(); }
void wait_upload(CudaContext&, int) { no_cuda(); }
void compute_release(CudaContext&, int) { no_cuda(); }
void host_wait_upload(CudaContext&, int) { no_cuda(); }
void synchronize(CudaContext&) { no_cuda(); }
void set_tf32(CudaContext&, bool) { no_cuda(); }
void device_copy_async(CudaContext&, float*, const float*, size_t) { no_cuda(); }
void device_add_async(CudaContext&, float*, const float*, size_t) { no_cuda(); }
bool is_device_pointer(const void*) { return false; }
std::string gpu_bus_id(int) { no_cuda(); }

}  // namespace mnist_dist
