// CUDA implementations of cuda/cuda_runtime_api.h: GPU discovery and selection, memory, copies,
// staged uploads on the context's copy stream.
#include <cuda_runtime.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "core/error.h"
#include "cuda/batch_stager.h"
#include "cuda/checks.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_runtime_api.h"
#include "cuda/launch.h"

namespace mnist_dist {

static_assert(BatchStager::kSlots == CudaContext::kStagingSlots, "one stager slot per staging slot");

namespace {

std::string mib(size_t bytes) { return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB"; }

[[noreturn]] void out_of_memory(const char* what, size_t bytes) {
  cudaGetLastError();  // clear the error so that later calls are unaffected
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  throw UserError(std::string("out of ") + what + " memory: " + mib(bytes) + " requested, " +
                  mib(free_b) + " free of " + mib(total_b) +
                  "; use a smaller --batch-size or --eval-batch-size");
}

void check_slot(int slot) {
  MD_CHECK(slot >= 0 && slot < CudaContext::kStagingSlots, "staging slot " + std::to_string(slot));
}

}  // namespace

int usable_gpu_count(std::string* why) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    // Without the kernel driver the runtime says "CUDA driver version is insufficient", which
    // reads like an old driver; say what is missing instead.
    const bool driver = access("/proc/driver/nvidia/version", F_OK) == 0;
    if (why != nullptr)
      *why = driver ? std::string("CUDA: ") + cudaGetErrorString(e)
                    : std::string("no NVIDIA driver: /proc/driver/nvidia/version is absent");
    return 0;
  }
  if (count == 0 && why != nullptr) {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    *why = visible != nullptr ? "no CUDA device visible (CUDA_VISIBLE_DEVICES=" + std::string(visible) + ")"
                              : "no CUDA device";
  }
  return count;
}

int select_local_gpu(int local_rank, int local_size, bool shared_ok) {
  MD_CHECK(local_rank >= 0 && local_rank < local_size, "local rank " + std::to_string(local_rank) +
                                                            " of " + std::to_string(local_size));
  std::string why;
  const int count = usable_gpu_count(&why);
  if (count == 0) throw UserError("no usable GPU (" + why + "); use --device cpu");
  // A launcher that binds GPUs to ranks (srun --gpus-per-task, a wrapper script) sets
  // CUDA_VISIBLE_DEVICES per rank: then each rank sees only its own GPU(s), and only the
  // job-wide comparison of bus ids (comm/gpu_assignment.h) can tell whether two ranks share one.
  const bool maybe_bound = std::getenv("CUDA_VISIBLE_DEVICES") != nullptr;
  if (local_size > count && !maybe_bound && !shared_ok)
    throw UserError(std::to_string(local_size) + " ranks on this node but only " +
                    std::to_string(count) + " GPU(s): start at most " + std::to_string(count) +
                    " rank(s) per node (one GPU per rank), use --comm host-staged (ranks share a "
                    "GPU; for testing), or --device cpu");
  const int device = local_rank % count;
  MD_CUDA(cudaSetDevice(device));
  return device;
}

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation) out_of_memory("GPU", bytes);
  MD_CUDA(e);
  return p;
}

void device_free(void* p) {
  if (p == nullptr) return;
  const cudaError_t e = cudaFree(p);
  if (e != cudaErrorCudartUnloading) MD_CUDA(e);  // at process exit the runtime may be gone
}

void copy_h2d(void* dst, const void* src, size_t bytes) {
  if (bytes > 0) MD_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

void copy_d2h(void* dst, const void* src, size_t bytes) {
  if (bytes > 0) MD_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

void device_memset0(void* p, size_t bytes) {
  if (bytes > 0) MD_CUDA(cudaMemset(p, 0, bytes));
}

void* pinned_alloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMallocHost(&p, bytes);
  if (e == cudaErrorMemoryAllocation) out_of_memory("pinned host", bytes);
  MD_CUDA(e);
  return p;
}

void pinned_free(void* p) {
  if (p == nullptr) return;
  const cudaError_t e = cudaFreeHost(p);
  if (e != cudaErrorCudartUnloading) MD_CUDA(e);
}

void device_synchronize() { MD_CUDA(cudaDeviceSynchronize()); }

void upload_async(CudaContext& ctx, int slot, void* dst, const void* pinned_src, size_t bytes) {
  check_slot(slot);
  if (ctx.compute_done_recorded(slot))
    MD_CUDA(cudaStreamWaitEvent(ctx.copy_stream(), ctx.compute_done(slot), 0));
  if (bytes > 0)
    MD_CUDA(cudaMemcpyAsync(dst, pinned_src, bytes, cudaMemcpyHostToDevice, ctx.copy_stream()));
  MD_CUDA(cudaEventRecord(ctx.copy_done(slot), ctx.copy_stream()));
}

void wait_upload(CudaContext& ctx, int slot) {
  check_slot(slot);
  MD_CUDA(cudaStreamWaitEvent(ctx.stream(), ctx.copy_done(slot), 0));
}

void compute_release(CudaContext& ctx, int slot) {
  check_slot(slot);
  MD_CUDA(cudaEventRecord(ctx.compute_done(slot), ctx.stream()));
  ctx.mark_compute_done_recorded(slot);
}

void host_wait_upload(CudaContext& ctx, int slot) {
  check_slot(slot);
  MD_CUDA(cudaEventSynchronize(ctx.copy_done(slot)));
}

void synchronize(CudaContext& ctx) {
  MD_CUDA(cudaStreamSynchronize(ctx.stream()));
  MD_CUDA(cudaStreamSynchronize(ctx.copy_stream()));
}

namespace {
__global__ void add_kernel(float* __restrict__ dst, const float* __restrict__ src, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    dst[i] += src[i];
}
}  // namespace

void device_copy_async(CudaContext& ctx, float* dst, const float* src, size_t n) {
  if (n > 0) MD_CUDA(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, ctx.stream()));
}

void device_add_async(CudaContext& ctx, float* dst, const float* src, size_t n) {
  if (n == 0) return;
  add_kernel<<<cuda::grid_1d(n), cuda::kBlock, 0, ctx.stream()>>>(dst, src, n);
  MD_CUDA_LAUNCH("add_kernel");
}

void set_tf32(CudaContext& ctx, bool allow) { ctx.set_allow_tf32(allow); }

bool is_device_pointer(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

std::string gpu_bus_id(int device) {
  char bus[64] = "";
  MD_CUDA(cudaDeviceGetPCIBusId(bus, sizeof bus, device));
  return bus;
}

}  // namespace mnist_dist
