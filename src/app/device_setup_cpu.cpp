// setup_device for builds without CUDA: always the CPU backend.
#include "app/device_setup.h"
#include "core/error.h"
#include "cuda/cuda_runtime_api.h"

namespace mnist_dist {

DeviceSetup setup_device(const std::string& device, const std::string& gpu_comm) {
  std::string why;
  usable_gpu_count(&why);
  if (device == "cuda")
    throw UserError("--device cuda: no usable GPU (" + why + "); use --device cpu or auto");
  if (gpu_comm != "auto")
    throw UserError("--comm " + gpu_comm + " is for GPU ranks, and there is no usable GPU (" + why +
                    "); CPU ranks always use MPI: leave --comm out");
  DeviceSetup s;
  s.comm = launched_by_mpi() ? make_mpi_world_communicator() : make_single_process_communicator();
  s.description = "cpu";
  if (device == "auto") s.notice = "note: no usable GPU (" + why + "); training on the CPU";
  return s;
}

}  // namespace mnist_dist
