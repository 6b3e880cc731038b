// MPI entry point for builds without MPI: a clear user error.
#include "comm/communicator.h"
#include "core/error.h"

namespace mnist_dist {

std::unique_ptr<Communicator> make_mpi_world_communicator() {
  throw UserError("started by an MPI launcher, but this mnist_dist was built without MPI: "
                  "install libopenmpi-dev and rebuild (launch/setup.sh), or run it without mpirun");
}

}  // namespace mnist_dist
