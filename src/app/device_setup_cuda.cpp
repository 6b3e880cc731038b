// setup_device for builds with CUDA: GPU when usable (one per local rank), NCCL over MPI.
#include <mpi.h>

#include "app/device_setup.h"
#include "comm/comm_nccl.h"
#include "core/error.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_runtime_api.h"

namespace mnist_dist {

DeviceSetup setup_device(const std::string& device) {
  std::string why;
  const int gpus = usable_gpu_count(&why);
  DeviceSetup s;
  if (device == "cpu" || (device == "auto" && gpus == 0)) {
    s.comm = launched_by_mpi() ? make_mpi_world_communicator() : make_single_process_communicator();
    s.description = "cpu";
    if (device == "auto") s.notice = "note: no usable GPU (" + why + "); training on the CPU";
    return s;
  }
  if (gpus == 0) throw UserError("--device cuda: no usable GPU (" + why + "); use --device cpu or auto");
  s.backend = Backend::kCuda;
  if (launched_by_mpi()) {
    // MPI first: it tells the local rank, which picks the GPU; then NCCL over MPI.
    std::unique_ptr<Communicator> mpi = make_mpi_world_communicator();
    const int dev = select_local_gpu(mpi->local_rank(), mpi->local_size());
    s.cuda = CudaContext::create(dev);
    s.comm = make_nccl_communicator(MPI_COMM_WORLD, *s.cuda);
  } else {
    s.cuda = CudaContext::create(select_local_gpu(0, 1));
    s.comm = make_single_process_communicator();
  }
  s.description = s.cuda->describe();
  return s;
}

}  // namespace mnist_dist
