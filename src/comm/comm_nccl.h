// NCCL communicator for GPU ranks (DESIGN.md contract 6): one GPU per rank, the NCCL unique id
// created by rank 0 and broadcast over MPI. Compiled only in builds with CUDA (which need MPI).
//
// Pointers: allreduce_sum / start_allreduce_sum take DEVICE pointers (gradient buckets, SyncBN
// sums) and run on the communicator's own stream, ordered after the compute stream and before
// later compute work by events — the host never waits. Given a HOST pointer (loss sums, stop
// flags) they fall back to the MPI path and block the host. broadcast, broadcast_idle,
// allgather_u64 and barrier always work on HOST memory over MPI (Open MPI here is not
// CUDA-aware: stage device data through the host). abort = ncclCommAbort + MPI_Abort.
#pragma once

#include <mpi.h>

#include <memory>

#include "comm/communicator.h"

namespace mnist_dist {

struct CudaContext;

// A communicator over the ranks of `comm` (duplicated). Every rank must already have selected
// its GPU (select_local_gpu, cuda/cuda_runtime_api.h) and created `cuda` on it; `cuda` must
// outlive the communicator's use (its destructor does not touch it). Collective: all ranks call
// it. Two ranks on one GPU fail inside NCCL: check first (comm/gpu_assignment.h).
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, CudaContext& cuda);

}  // namespace mnist_dist
