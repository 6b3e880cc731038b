// One check helper per GPU library (CUDA runtime, cuDNN, cuBLAS, NCCL): on failure each reports
// the call's text, the library's own message and file:line through mnist_dist::fatal (which
// names the rank and ends the whole job). Statuses travel as int so this header needs none of
// the libraries' headers; every library's success code is 0.
#pragma once

namespace mnist_dist {

[[noreturn]] void cuda_failed(int status, const char* call, const char* file, int line);
[[noreturn]] void cudnn_failed(int status, const char* call, const char* file, int line);
[[noreturn]] void cublas_failed(int status, const char* call, const char* file, int line);
[[noreturn]] void nccl_failed(int status, const char* call, const char* file, int line);

}  // namespace mnist_dist

#define MD_GPU_CHECK_(fn, call)                                                 \
  do {                                                                          \
    const int md_status_ = static_cast<int>(call);                              \
    if (md_status_ != 0) ::mnist_dist::fn(md_status_, #call, __FILE__, __LINE__); \
  } while (0)

#define MD_CUDA(call) MD_GPU_CHECK_(cuda_failed, call)
#define MD_CUDNN(call) MD_GPU_CHECK_(cudnn_failed, call)
#define MD_CUBLAS(call) MD_GPU_CHECK_(cublas_failed, call)
#define MD_NCCL(call) MD_GPU_CHECK_(nccl_failed, call)
// After every kernel launch (<<<...>>>), with the kernel's name as a string literal: reports
// launch-configuration errors at once (errors inside the kernel surface at the next check).
#define MD_CUDA_LAUNCH(kernel_name)                                                   \
  do {                                                                                \
    const int md_status_ = static_cast<int>(cudaGetLastError());                      \
    if (md_status_ != 0)                                                              \
      ::mnist_dist::cuda_failed(md_status_, "launch of " kernel_name, __FILE__, __LINE__); \
  } while (0)
