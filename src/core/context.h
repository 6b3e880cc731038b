// The execution context passed explicitly to every layer: backend, threads, communicator.
#pragma once

namespace mnist_dist {

class Communicator;
struct CudaContext;  // cuda/cuda_context.h: device, streams, cuDNN/cuBLAS handles

enum class Backend { kCpu, kCuda };

struct Context {
  Backend backend = Backend::kCpu;
  int threads = 1;                   // CPU: OpenMP/BLAS threads of this rank
  Communicator* comm = nullptr;      // SyncBN statistics are reduced through it when set
  bool sync_bn = true;               // false: per-replica BatchNorm statistics (--bn local)
  CudaContext* cuda = nullptr;       // the CUDA backend's context (null on CPU)
};

}  // namespace mnist_dist
