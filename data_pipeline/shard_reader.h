// ShardReader: random and sequential access to one split (train / val / test) of a prepared
// data set, validated against manifest.json when opened; reads whole chunks into an LRU cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace mnist_dist::data {

// Move-only; owns the split's open HDF5 files. Not thread-safe: use one reader per thread.
class ShardReader {
 public:
  // Opens data_dir's `split` ("train" | "val" | "test"). Checks that manifest.json exists and
  // is valid, that every listed shard exists, and that each shard's datasets (rank, type,
  // shape) and attributes agree with the manifest. UserError naming the file otherwise.
  static ShardReader open(const std::string& data_dir, const std::string& split);

  ShardReader(ShardReader&&) noexcept;
  ShardReader& operator=(ShardReader&&) noexcept;
  ~ShardReader();

  size_t size() const;      // samples in the split
  uint32_t rows() const;
  uint32_t cols() const;
  int num_classes() const;  // 10
  const std::string& split() const;

  // Samples [begin, begin + count) of the split, in split order: images (count, rows, cols)
  // and labels (count). Either buffer may be null to skip it. std::out_of_range past size().
  void read_range(size_t begin, size_t count, uint8_t* images, uint8_t* labels);

  // Samples idx[0..n) (any order, duplicates allowed) into images[i] / labels[i]. Requests are
  // grouped by shard and chunk; each chunk is read whole once and kept in the cache.
  void read_indices(const uint32_t* idx, size_t n, uint8_t* images, uint8_t* labels);

  // Re-hashes every shard's images and labels against manifest.json; UserError on a mismatch.
  void verify_checksums();

  // Memory for cached chunks (default 256 MiB, enough for all of MNIST); 0 disables caching.
  void set_cache_bytes(size_t bytes);

 private:
  struct Impl;
  explicit ShardReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mnist_dist::data
