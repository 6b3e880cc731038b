// The execution context passed explicitly to every layer: backend, CPU threads and kernel
// choices, communicator. The kernel fields default to kernels_from_env() (core/kernel_choice.h,
// the one place MNIST_DIST_NO_AVX512 / MNIST_DIST_NO_FUSION are read); set them to override.
#pragma once

#include <cstdint>

#include "core/kernel_choice.h"

namespace mnist_dist {

class Communicator;
struct CudaContext;  // cuda/cuda_context.h: device, streams, cuDNN/cuBLAS handles
namespace exact {
class Gather;  // layers/exact_grad.h
}  // namespace exact

enum class Backend { kCpu, kCuda };

struct Context {
  Backend backend = Backend::kCpu;
  // CPU: the OpenMP team of the layers' parallel regions (num_threads); 0: OpenMP's default
  // at the call (omp_get_max_threads()), for callers that set it with omp_set_num_threads.
  int threads = 0;
  bool use_avx512 = kernels_from_env().use_avx512;    // CPU: AVX-512 kernels (where the CPU has them)
  bool fuse_layers = kernels_from_env().fuse_layers;  // CPU: fused BatchNorm → ReLU → max-pool
  Communicator* comm = nullptr;      // SyncBN statistics are reduced through it when set
  bool sync_bn = true;               // false: per-replica BatchNorm statistics (--bn local)
  CudaContext* cuda = nullptr;       // the CUDA backend's context (null on CPU)
  // Training noise keyed by global sample (dropout): the trainer sets, before each training
  // forward, the key of the pass (run seed, epoch, micro-step) and the position in the global
  // batch of the batch's first row (row i of this rank's slice is noise_first_row + i).
  uint64_t noise_key = 0;
  uint64_t noise_first_row = 0;
  // Deterministic training (--deterministic; docs/determinism.md): when exact_grads is set (in
  // the backend's memory), layers write the sum of their chunks' parameter gradients, each
  // rounded to fixed point (layers/exact_grad.h), into exact_grads (the arena's offsets) instead
  // of grads(), or add it to what is there when exact_add is set (the later micro-steps of
  // --accumulate); BatchNorm sums its statistics per chunk. This rank's slice of the global
  // batch is the chunks [first_chunk, first_chunk + its samples / chunk) of total_chunks, each
  // `chunk` samples (the global batch's last one may be shorter). CUDA: the layers' kernels set *exact_diverged
  // (device memory) when a chunk's value leaves the fixed-point range (the CPU layers throw).
  int64_t* exact_grads = nullptr;
  unsigned* exact_diverged = nullptr;
  exact::Gather* exact_gather = nullptr;  // CPU, one node: dense layers' gather (layers/exact_grad.h)
  bool exact_add = false;
  int chunk = 0;
  int first_chunk = 0;
  int total_chunks = 0;
};

}  // namespace mnist_dist
