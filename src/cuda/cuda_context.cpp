// CudaContext: creation (device, streams, cuDNN/cuBLAS handles, workspaces) and release.
#include "cuda/cuda_context.h"

#include <utility>

#include "cuda/checks.h"

namespace mnist_dist {

std::unique_ptr<CudaContext> CudaContext::create(int device, size_t workspace_bytes) {
  std::unique_ptr<CudaContext> c(new CudaContext());
  MD_CUDA(cudaSetDevice(device));
  c->device_ = device;
  cudaDeviceProp prop{};
  MD_CUDA(cudaGetDeviceProperties(&prop, device));
  c->name_ = prop.name;
  c->sm_count_ = prop.multiProcessorCount;
  c->major_ = prop.major;
  c->minor_ = prop.minor;
  // Compute: blocking (see the header). Copies: non-blocking, ordered by events only.
  MD_CUDA(cudaStreamCreate(&c->stream_));
  MD_CUDA(cudaStreamCreateWithFlags(&c->copy_stream_, cudaStreamNonBlocking));
  for (int s = 0; s < kStagingSlots; ++s) {
    MD_CUDA(cudaEventCreateWithFlags(&c->copy_done_[s], cudaEventDisableTiming));
    MD_CUDA(cudaEventCreateWithFlags(&c->compute_done_[s], cudaEventDisableTiming));
  }
  MD_CUDNN(cudnnCreate(&c->cudnn_));
  MD_CUDNN(cudnnSetStream(c->cudnn_, c->stream_));
  MD_CUBLAS(cublasCreate(&c->cublas_));
  MD_CUBLAS(cublasSetStream(c->cublas_, c->stream_));
  // After cublasSetStream (which resets it): a workspace of our own, so that cuBLAS never
  // allocates inside the step loop.
  MD_CUDA(cudaMalloc(&c->cublas_workspace_, kCublasWorkspaceBytes));
  MD_CUBLAS(cublasSetWorkspace(c->cublas_, c->cublas_workspace_, kCublasWorkspaceBytes));
  if (workspace_bytes > 0) MD_CUDA(cudaMalloc(&c->workspace_, workspace_bytes));
  c->workspace_bytes_ = workspace_bytes;
  c->set_allow_tf32(true);
  return c;
}

CudaContext::~CudaContext() {
  if (device_ < 0) return;  // moved from
  // Everything queued must finish before its memory and handles go.
  cudaSetDevice(device_);
  cudaStreamSynchronize(stream_);
  cudaStreamSynchronize(copy_stream_);
  if (cublas_ != nullptr) cublasDestroy(cublas_);
  if (cudnn_ != nullptr) cudnnDestroy(cudnn_);
  cudaFree(cublas_workspace_);
  cudaFree(workspace_);
  for (int s = 0; s < kStagingSlots; ++s) {
    if (copy_done_[s] != nullptr) cudaEventDestroy(copy_done_[s]);
    if (compute_done_[s] != nullptr) cudaEventDestroy(compute_done_[s]);
  }
  if (copy_stream_ != nullptr) cudaStreamDestroy(copy_stream_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

void CudaContext::swap(CudaContext& o) noexcept {
  std::swap(device_, o.device_);
  std::swap(sm_count_, o.sm_count_);
  std::swap(name_, o.name_);
  std::swap(major_, o.major_);
  std::swap(minor_, o.minor_);
  std::swap(stream_, o.stream_);
  std::swap(copy_stream_, o.copy_stream_);
  std::swap(cudnn_, o.cudnn_);
  std::swap(cublas_, o.cublas_);
  std::swap(workspace_, o.workspace_);
  std::swap(workspace_bytes_, o.workspace_bytes_);
  std::swap(cublas_workspace_, o.cublas_workspace_);
  std::swap(allow_tf32_, o.allow_tf32_);
  for (int s = 0; s < kStagingSlots; ++s) {
    std::swap(copy_done_[s], o.copy_done_[s]);
    std::swap(compute_done_[s], o.compute_done_[s]);
    std::swap(compute_recorded_[s], o.compute_recorded_[s]);
  }
}

void CudaContext::set_allow_tf32(bool allow) {
  allow_tf32_ = allow;
  // CUBLAS_DEFAULT_MATH keeps fp32 GEMMs in full fp32; the TF32 mode lets them use tensor cores.
  MD_CUBLAS(cublasSetMathMode(cublas_, allow ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

std::string CudaContext::describe() const {
  return "cuda:" + std::to_string(device_) + " (" + name_ + ", sm_" + std::to_string(major_) +
         std::to_string(minor_) + ", " + std::to_string(sm_count_) + " SMs)";
}

}  // namespace mnist_dist
