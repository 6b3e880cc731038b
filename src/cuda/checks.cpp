// The GPU libraries' check helpers (cuda/checks.h): message = call text + the library's own words.
#include "cuda/checks.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <nccl.h>

#include <string>

#include "core/error.h"

namespace mnist_dist {

void cuda_failed(int status, const char* call, const char* file, int line) {
  const auto e = static_cast<cudaError_t>(status);
  fatal(std::string(call) + " failed: " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e), file,
        line);
}

void cudnn_failed(int status, const char* call, const char* file, int line) {
  char detail[512] = "";
  cudnnGetLastErrorString(detail, sizeof detail);  // cuDNN 9: the reason behind the status
  std::string msg = std::string(call) + " failed: " +
                    cudnnGetErrorString(static_cast<cudnnStatus_t>(status));
  if (detail[0] != '\0') msg += std::string(" (") + detail + ")";
  fatal(msg, file, line);
}

void cublas_failed(int status, const char* call, const char* file, int line) {
  const auto s = static_cast<cublasStatus_t>(status);
  fatal(std::string(call) + " failed: " + cublasGetStatusName(s) + ": " + cublasGetStatusString(s),
        file, line);
}

void nccl_failed(int status, const char* call, const char* file, int line) {
  std::string msg =
      std::string(call) + " failed: " + ncclGetErrorString(static_cast<ncclResult_t>(status));
  const char* last = ncclGetLastError(nullptr);
  if (last != nullptr && last[0] != '\0') msg += std::string(" (") + last + ")";
  fatal(msg, file, line);
}

}  // namespace mnist_dist
