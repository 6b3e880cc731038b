// gtest main for tests run under mpiexec: MPI initialised once, one thread per rank, only
// rank 0 prints, and the exit code is agreed over all ranks (any failure fails everywhere).
// When no case ran (all skipped at this rank count) rank 0 prints the line that ctest's
// SKIP_REGULAR_EXPRESSION (tests/mpi/CMakeLists.txt) reports as a skip.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

#include "app/threads.h"
#include "comm/comm_mpi.h"

int main(int argc, char** argv) {
  mnist_dist::prepare_mpi_environment();  // as mnist_dist does before MPI_Init
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  mnist_dist::set_threads(1);
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0, any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  const auto& unit = *::testing::UnitTest::GetInstance();
  if (rank == 0 && any == 0 && unit.successful_test_count() == 0 && unit.skipped_test_count() > 0)
    std::printf("mpi_test_main: SKIPPED: all %d test case(s) skipped at this rank count\n",
                unit.skipped_test_count());
  MPI_Finalize();
  return any;
}
