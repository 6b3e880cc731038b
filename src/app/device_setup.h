// Choosing where a rank trains (--device auto|cpu|cuda) and the matching communicator:
// CPU ranks talk over MPI (or not at all when alone); GPU ranks over NCCL, bootstrapped over
// MPI, one GPU per local rank. cpu/device_setup_cpu.cpp serves builds without CUDA,
// device_setup_cuda.cpp builds with it; call sites are the same.
#pragma once

#include <memory>
#include <string>

#include "comm/communicator.h"
#include "core/context.h"

namespace mnist_dist {

struct DeviceSetup {
  Backend backend = Backend::kCpu;
  std::shared_ptr<CudaContext> cuda;  // null on the CPU backend (declared first: outlives comm)
  std::unique_ptr<Communicator> comm;
  std::string description;            // "cpu" or "cuda:0 (NVIDIA H200)"
  std::string notice;                 // said once by rank 0 (e.g. why the GPU is not used)
};

// device: "auto" (the GPU when one is usable, else CPU with a notice), "cpu" or "cuda"
// (UserError when no GPU is usable, with the reason). gpu_comm: how GPU ranks talk — "auto" or
// "nccl" (NCCL, one GPU per rank, checked over the job), "host-staged" (MPI through host
// memory, ranks may share a GPU: comm/comm_host_staged.h); anything but "auto" on CPU ranks is
// a UserError. Initialises MPI when launched by an MPI launcher.
DeviceSetup setup_device(const std::string& device, const std::string& gpu_comm = "auto");

}  // namespace mnist_dist
