// Helpers for MPI tests: agreement over ranks, a synthetic prepared data set shared by all
// ranks (rank 0 writes it, the path is broadcast), relative L2 distances.
#pragma once

#include <mpi.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "data_pipeline/shard_writer.h"
#include "idx_writer.h"

namespace mnist_dist::testing {

inline int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
inline int world_size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

// True on every rank iff `ok` is true on every rank.
inline bool all_ranks(bool ok) {
  int mine = ok ? 1 : 0, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all == 1;
}

// A prepared synthetic data set (n_train samples before the 0.3 validation split).
class SharedDataset {
 public:
  SharedDataset(size_t n_train, size_t n_test) {
    char buf[4096] = "";
    if (world_rank() == 0) {
      const auto dir = std::filesystem::temp_directory_path() /
                       ("md_mpi_" + std::to_string(::getpid()));
      std::filesystem::create_directories(dir / "idx");
      write_block_dataset((dir / "idx").string(), n_train, n_test);
      data::PrepareOptions o;
      o.idx_dir = (dir / "idx").string();
      o.out_dir = (dir / "h5").string();
      o.shards = 3;
      data::prepare_shards(o);
      std::snprintf(buf, sizeof buf, "%s", dir.c_str());
    }
    MPI_Bcast(buf, sizeof buf, MPI_CHAR, 0, MPI_COMM_WORLD);
    root_ = buf;
  }
  ~SharedDataset() {
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank() == 0) std::filesystem::remove_all(root_);
  }
  std::string dir() const { return root_ + "/h5"; }

 private:
  std::string root_;
};

// ‖a − b‖₂ / ‖b‖₂ over [0, n).
inline double rel_l2(const float* a, const float* b, size_t n) {
  double d = 0.0, r = 0.0;
  for (size_t i = 0; i < n; ++i) {
    d += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    r += static_cast<double>(b[i]) * b[i];
  }
  return r > 0.0 ? std::sqrt(d / r) : std::sqrt(d);
}

}  // namespace mnist_dist::testing
