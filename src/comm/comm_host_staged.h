// Host-staged communicator (--comm host-staged): GPU ranks whose collectives go over MPI, the
// device buffers copied through host memory. NCCL refuses two ranks on one GPU; this lets
// `mpiexec -n 2` on a one-GPU machine run the multi-rank GPU semantics (SyncBN over ranks, the
// gradient buckets) and compare them with the CPU ranks. It is for testing, not speed: every
// device all-reduce is a blocking download, MPI sum and upload.
//
// Device pointers are told from host ones by DeviceMemory::is_device; the copies are the
// plain ones of cuda/cuda_runtime_api.h (ordered after all work queued on the compute stream,
// see there). Host pointers, broadcasts, gathers and barriers go to the host communicator
// unchanged. A non-blocking all-reduce of device memory completes before it returns.
#pragma once

#include <cstddef>
#include <memory>

#include "comm/communicator.h"

namespace mnist_dist {

// How the communicator recognises and copies device memory (the CUDA runtime's by default;
// the tests put host memory in their place to check the staging on machines without a GPU).
struct DeviceMemory {
  bool (*is_device)(const void* p);
  void (*to_host)(void* dst, const void* src, size_t bytes);
  void (*to_device)(void* dst, const void* src, size_t bytes);
};
DeviceMemory cuda_device_memory();

std::unique_ptr<Communicator> make_host_staged_communicator(std::unique_ptr<Communicator> host,
                                                            DeviceMemory memory = cuda_device_memory());

}  // namespace mnist_dist
