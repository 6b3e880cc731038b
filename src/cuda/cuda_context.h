// The CUDA backend's execution context (Context::cuda): one GPU, its compute stream, a copy
// stream for batch uploads, the cuDNN and cuBLAS handles bound to the compute stream, and one
// workspace that cuDNN convolutions share (layers run one after another on one stream).
// Move-only RAII; only CUDA code includes this header (it needs the CUDA/cuDNN/cuBLAS headers).
//
// The compute stream is a *blocking* stream on purpose: the plain copies of
// cuda/cuda_runtime_api.h (copy_h2d/copy_d2h, cudaMemcpy on the legacy default stream) are then
// ordered after all work queued on it, so host code needs no stream to stay correct.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>
#include <memory>
#include <string>

namespace mnist_dist {

struct CudaContext {
  static constexpr size_t kDefaultWorkspaceBytes = size_t{64} << 20;  // cuDNN convolutions
  static constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;   // NVIDIA's figure for Hopper
  static constexpr int kStagingSlots = 2;                             // double-buffered uploads

  // Makes `device` current for this thread and creates streams, handles and workspaces.
  static std::unique_ptr<CudaContext> create(int device,
                                             size_t workspace_bytes = kDefaultWorkspaceBytes);

  CudaContext(CudaContext&& o) noexcept { swap(o); }
  CudaContext& operator=(CudaContext&& o) noexcept {
    CudaContext tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;
  ~CudaContext();

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }       // compute: kernels, cuDNN, cuBLAS
  cudaStream_t copy_stream() const { return copy_stream_; }
  cudnnHandle_t cudnn() const { return cudnn_; }
  cublasHandle_t cublas() const { return cublas_; }
  void* workspace() const { return workspace_; }
  size_t workspace_bytes() const { return workspace_bytes_; }
  int sm_count() const { return sm_count_; }

  // TF32 tensor-core math for fp32 GEMMs and convolutions (default on; tests comparing with the
  // CPU turn it off). Convolution layers pick their algorithms per (batch, this flag).
  bool allow_tf32() const { return allow_tf32_; }
  void set_allow_tf32(bool allow);

  // "cuda:0 (NVIDIA H200, sm_90, 132 SMs)"
  std::string describe() const;

  // Events of the staged batch uploads (cuda/cuda_runtime_api.h: upload_async & co.).
  cudaEvent_t copy_done(int slot) const { return copy_done_[slot]; }
  cudaEvent_t compute_done(int slot) const { return compute_done_[slot]; }
  bool compute_done_recorded(int slot) const { return compute_recorded_[slot]; }
  void mark_compute_done_recorded(int slot) { compute_recorded_[slot] = true; }

 private:
  CudaContext() = default;
  void swap(CudaContext& o) noexcept;

  int device_ = -1;
  int sm_count_ = 0;
  std::string name_;
  int major_ = 0, minor_ = 0;
  cudaStream_t stream_ = nullptr, copy_stream_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  void* cublas_workspace_ = nullptr;
  bool allow_tf32_ = true;
  cudaEvent_t copy_done_[kStagingSlots] = {};
  cudaEvent_t compute_done_[kStagingSlots] = {};
  bool compute_recorded_[kStagingSlots] = {};
};

}  // namespace mnist_dist
