// All-reduce benchmark in the style of nccl-tests: for sizes up to the seed net's gradient
// arena, the time of our bucketed GradientReducer and of one raw MPI_Allreduce in the same
// run, algbw = bytes / time and busbw = algbw · 2(n−1)/n; then a separate exact correctness
// pass (integer-valued data) that counts wrong elements. Run under mpirun -np N.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "comm/comm_mpi.h"
#include "comm/grad_buckets.h"

using namespace mnist_dist;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Layer-like ranges over n floats: a few uneven pieces, like the seed net's arena.
std::vector<std::pair<size_t, size_t>> ranges_for(size_t n) {
  const double cut[] = {0.0, 0.0001, 0.001, 0.41, 0.995, 1.0};
  std::vector<std::pair<size_t, size_t>> r;
  for (int i = 0; i + 1 < 6; ++i) r.emplace_back(static_cast<size_t>(cut[i] * n), static_cast<size_t>(cut[i + 1] * n));
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  prepare_mpi_environment();  // the libnbc ring, as mnist_dist (OMPI_MCA_... overrides)
  MPI_Init(&argc, &argv);
  auto comm = make_mpi_communicator(MPI_COMM_WORLD);
  const int n = comm->size(), rank = comm->rank();
  const size_t arena = 1726054;  // seed net trainable parameters
  const double bucket_mb = argc > 1 ? std::atof(argv[1]) : 1.0;
  const int iters = 20;
  if (rank == 0) {
    std::printf("# all-reduce, %d ranks, buckets of %.2f MiB, median of %d\n", n, bucket_mb, iters);
    std::printf("%12s %10s | %10s %9s %9s | %10s %9s %9s | %6s\n", "size(B)", "count", "ours(us)",
                "algbw", "busbw", "mpi(us)", "algbw", "busbw", "#wrong");
  }
  for (size_t count : {size_t{1024}, size_t{16384}, size_t{262144}, size_t{1048576}, arena}) {
    std::vector<float> buf(count, 1.0f), ref(count);
    const auto layers = ranges_for(count);
    const auto buckets = make_buckets(layers, static_cast<size_t>(bucket_mb * 262144));
    std::vector<double> ours, raw;
    for (int it = 0; it < iters + 2; ++it) {
      MPI_Barrier(MPI_COMM_WORLD);
      double t0 = MPI_Wtime();
      GradientReducer reducer(*comm, buckets, buf.data());
      for (auto r = layers.rbegin(); r != layers.rend(); ++r) reducer.ready_from(r->first);
      reducer.finish();
      const double t1 = MPI_Wtime();
      MPI_Barrier(MPI_COMM_WORLD);
      const double t2 = MPI_Wtime();
      MPI_Allreduce(MPI_IN_PLACE, buf.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      const double t3 = MPI_Wtime();
      if (it >= 2) ours.push_back(t1 - t0), raw.push_back(t3 - t2);
      std::fill(buf.begin(), buf.end(), 1.0f);
    }
    // Correctness: integer-valued floats, exact in any summation order.
    for (size_t i = 0; i < count; ++i) buf[i] = static_cast<float>((i * 7 + static_cast<size_t>(rank) * 3) % 101);
    GradientReducer reducer(*comm, buckets, buf.data());
    reducer.finish();
    long wrong = 0;
    for (size_t i = 0; i < count; ++i) {
      double expect = 0;
      for (int r = 0; r < n; ++r) expect += static_cast<double>((i * 7 + static_cast<size_t>(r) * 3) % 101);
      wrong += buf[i] != static_cast<float>(expect);
    }
    long wrong_all = 0;
    MPI_Allreduce(&wrong, &wrong_all, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    const double bytes = static_cast<double>(count) * sizeof(float), factor = n > 1 ? 2.0 * (n - 1) / n : 1.0;
    const double to = median(ours), tr = median(raw);
    if (rank == 0)
      std::printf("%12.0f %10zu | %10.1f %9.2f %9.2f | %10.1f %9.2f %9.2f | %6ld\n", bytes, count, to * 1e6,
                  bytes / to / 1e9, bytes / to / 1e9 * factor, tr * 1e6, bytes / tr / 1e9,
                  bytes / tr / 1e9 * factor, wrong_all);
  }
  comm.reset();
  MPI_Finalize();
  return 0;
}
