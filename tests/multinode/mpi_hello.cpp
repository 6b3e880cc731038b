// mpi_hello.cpp: the harness's own MPI check. Each rank prints "rank R/W host H sum S OK|BAD", where
// S is MPI_Allreduce of (rank+1) over the world and must be W(W+1)/2. Exit 1 when it is not.
#include <mpi.h>
#include <cstdio>
#include <unistd.h>

int main(int argc, char** argv) {
  int rank = 0, size = 0, val = 0, sum = 0;
  char host[256] = {0};
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  gethostname(host, sizeof host - 1);
  val = rank + 1;
  MPI_Allreduce(&val, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  const int ok = sum == size * (size + 1) / 2;
  printf("rank %d/%d host %s sum %d %s\n", rank, size, host, sum, ok ? "OK" : "BAD");
  fflush(stdout);
  MPI_Finalize();
  return ok ? 0 : 1;
}
