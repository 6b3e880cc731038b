// Thread count of a rank: OpenMP and OpenBLAS set together, default cores ÷ local ranks.
#pragma once

#include <cblas.h>
#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <string>

namespace mnist_dist {

// Cores this process may run on (its affinity mask).
inline int usable_cores() {
  cpu_set_t set;
  int cores = 1;
  if (sched_getaffinity(0, sizeof set, &set) == 0) cores = CPU_COUNT(&set);
  return std::max(1, cores);
}

// The cores divided among the ranks of the node.
inline int default_threads(int local_ranks) { return std::max(1, usable_cores() / std::max(1, local_ranks)); }

// The most threads per rank --threads accepts: beyond 4 per core only the switching grows.
inline int max_threads() { return 4 * usable_cores(); }

inline void set_threads(int threads) {
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

}  // namespace mnist_dist
