// MPI communicator over any MPI communicator (MPI_COMM_WORLD for jobs; sub-communicators in
// tests that compare 1-, 2- and 4-rank runs inside one mpiexec).
#pragma once

#include <mpi.h>

#include <memory>
#include <string>

#include "comm/communicator.h"

namespace mnist_dist {

// Settings that must be in the environment before MPI_Init (make_mpi_world_communicator calls
// it; a program that initialises MPI itself calls it first): Open MPI's ring for non-blocking
// all-reduces, unless OMPI_MCA_coll_libnbc_iallreduce_algorithm is set already.
void prepare_mpi_environment();

// Wraps `comm` (duplicated; the duplicate is freed on destruction). MPI must be initialised.
std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm comm);

// The sharded exchange over shared-memory windows of `node` (a shared-memory split of
// `world`); null with the reason when the nodes hold different numbers of ranks, every node
// holds one, or /dev/shm lacks the room for the windows. exact: also the fixed-point gradient
// windows of deterministic training.
std::unique_ptr<ShardedExchange> make_mpi_sharded_exchange(MPI_Comm world, MPI_Comm node, size_t count,
                                                           std::string* why, bool exact = false);

// "" when the file system at `dir` has need_bytes free (or cannot be asked), else a one-line
// reason naming the sizes.
std::string shared_memory_shortfall(const char* dir, double need_bytes);

// Reports a failed MPI call (its text, MPI's message, file:line) through fatal().
void check_mpi(int rc, const char* call, const char* file, int line);
#define MD_MPI(call) ::mnist_dist::check_mpi((call), #call, __FILE__, __LINE__)

}  // namespace mnist_dist
