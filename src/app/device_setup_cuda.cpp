// setup_device for builds with CUDA: GPU when usable (one per local rank), NCCL over MPI.
#include <mpi.h>
#include <unistd.h>

#include <cstdlib>

#include "app/device_setup.h"
#include "comm/comm_host_staged.h"
#include "comm/comm_nccl.h"
#include "comm/gpu_assignment.h"
#include "core/error.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_runtime_api.h"

namespace mnist_dist {

DeviceSetup setup_device(const std::string& device, const std::string& gpu_comm) {
  std::string why;
  const int gpus = usable_gpu_count(&why);
  DeviceSetup s;
  if (gpu_comm != "auto" && (device == "cpu" || gpus == 0))
    throw UserError("--comm " + gpu_comm + " is for GPU ranks" +
                    (device == "cpu" ? std::string(" (--device cpu)") : " and there is no usable GPU (" + why + ")") +
                    "; CPU ranks always use MPI: leave --comm out");
  const bool on_cpu = device == "cpu" || (device == "auto" && gpus == 0);
  // Under MPI every rank first agrees on CPU or GPU (a GPU rank would wait in the GPU check below
  // for ranks that went the CPU way): one all-gather that every rank makes.
  std::unique_ptr<Communicator> mpi = launched_by_mpi() ? make_mpi_world_communicator() : nullptr;
  if (mpi) {
    const std::string problem = backend_disagreement(*mpi, on_cpu ? "cpu" : "cuda/" + gpu_comm);
    if (!problem.empty()) throw UserError(problem);
  }
  if (on_cpu) {
    s.comm = mpi ? std::move(mpi) : make_single_process_communicator();
    s.description = "cpu";
    if (device == "auto") s.notice = "note: no usable GPU (" + why + "); training on the CPU";
    return s;
  }
  if (gpus == 0) throw UserError("--device cuda: no usable GPU (" + why + "); use --device cpu or auto");
  s.backend = Backend::kCuda;
  const bool host_staged = gpu_comm == "host-staged";
  if (mpi) {
    // MPI first: it tells the local rank, which picks the GPU; every rank's choice is checked
    // before any GPU work; then NCCL over MPI (or MPI through host memory).
    const int dev = select_local_gpu(mpi->local_rank(), mpi->local_size(), host_staged);
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    const std::string shared =
        gpu_sharing_problem(gather_gpu_keys(*mpi, host, gpu_bus_id(dev)), std::getenv("CUDA_VISIBLE_DEVICES"));
    if (!shared.empty() && !host_staged) throw UserError(shared);
    s.cuda = CudaContext::create(dev);
    s.comm = host_staged ? make_host_staged_communicator(std::move(mpi))
                         : make_nccl_communicator(MPI_COMM_WORLD, *s.cuda);
  } else {
    s.cuda = CudaContext::create(select_local_gpu(0, 1));
    s.comm = make_single_process_communicator();
  }
  s.description = s.cuda->describe();
  return s;
}

}  // namespace mnist_dist
