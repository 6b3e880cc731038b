// Which samples form each global batch (DESIGN.md contract 1): epoch e's order is a seeded
// permutation that depends only on (seed, epoch); global step t takes positions
// [t·B, t·B + B) of it; rank r of W takes the r-th contiguous slice of that batch (in whole
// chunks under deterministic training).
#pragma once

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/rng.h"

namespace mnist_dist::data {

class EpochSampler {
 public:
  // drop_last: false keeps the final partial batch (default), true drops it.
  EpochSampler(size_t dataset_size, size_t global_batch, uint64_t seed, bool drop_last = false)
      : n_(dataset_size), batch_(global_batch), seed_(seed), drop_last_(drop_last) {}

  size_t dataset_size() const { return n_; }
  size_t global_batch() const { return batch_; }
  size_t steps_per_epoch() const { return drop_last_ ? n_ / batch_ : (n_ + batch_ - 1) / batch_; }

  // Builds epoch e's order (cheap: one permutation per epoch).
  void set_epoch(int epoch) {
    order_ = seeded_permutation(n_, seed_, 0xE90C0000ull + static_cast<uint64_t>(epoch));
    epoch_ = epoch;
  }
  int epoch() const { return epoch_; }

  // Size of global batch `step` (the last one may be partial).
  size_t batch_size(size_t step) const {
    const size_t begin = step * batch_;
    return begin + batch_ <= n_ ? batch_ : n_ - begin;
  }

  // Deterministic training: ranks take whole chunks of `chunk` samples (0: any sample split).
  void set_chunk(size_t chunk) { chunk_ = chunk; }
  size_t chunk() const { return chunk_; }

  // The sample indices of rank `rank`'s slice of global batch `step` of the current epoch.
  std::pair<const uint32_t*, size_t> slice(size_t step, int rank, int world) const {
    const size_t b = batch_size(step);
    const auto [lo, hi] = bounds(b, rank, world);
    return {order_.data() + step * batch_ + lo, hi - lo};
  }

  // Rank `rank`'s part of a batch of b samples: slice_bounds, or with chunks set, the
  // contiguous split of the batch's ceil(b / chunk) chunks (the last may be shorter) over the
  // ranks, in samples.
  std::pair<size_t, size_t> bounds(size_t b, int rank, int world) const {
    if (chunk_ == 0) return slice_bounds(b, rank, world);
    const auto [c0, c1] = slice_bounds((b + chunk_ - 1) / chunk_, rank, world);
    return {std::min(b, c0 * chunk_), std::min(b, c1 * chunk_)};
  }

  // Contiguous split of a batch of b samples over `world` ranks: [r·b/W, (r+1)·b/W).
  static std::pair<size_t, size_t> slice_bounds(size_t b, int rank, int world) {
    return {b * static_cast<size_t>(rank) / static_cast<size_t>(world),
            b * static_cast<size_t>(rank + 1) / static_cast<size_t>(world)};
  }

 private:
  size_t n_, batch_;
  uint64_t seed_;
  bool drop_last_;
  size_t chunk_ = 0;
  int epoch_ = -1;
  std::vector<uint32_t> order_;
};

}  // namespace mnist_dist::data
