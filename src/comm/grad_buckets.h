// Bucketed gradient all-reduce (DESIGN.md contract 3): the flat gradient buffer is cut into
// contiguous buckets along layer boundaries, last layer first, each at most `bucket_floats`
// long; a bucket's all-reduce starts as soon as backward has written all of its layers, and
// progress is driven at every later layer boundary so communication overlaps backward.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "comm/communicator.h"

namespace mnist_dist {

struct Bucket {
  size_t begin = 0, end = 0;  // [begin, end) of the gradient buffer
};

// Buckets for layer gradient ranges given in forward order (empty ranges are skipped; the
// non-empty ones must be ascending and non-overlapping). Returned last-first: buckets[0]
// holds the end of the buffer. Gaps between ranges (alignment padding) join the bucket above.
std::vector<Bucket> make_buckets(const std::vector<std::pair<size_t, size_t>>& layer_ranges,
                                 size_t bucket_floats);

class GradientReducer {
 public:
  GradientReducer(Communicator& comm, std::vector<Bucket> buckets, float* grads);

  // Backward reports that every gradient at or above `ready_from` is final.
  void ready_from(size_t ready_from);
  // Starts what is left, waits for every bucket. Afterwards grads holds the sum over ranks.
  void finish();
  const std::vector<Bucket>& buckets() const { return buckets_; }

 private:
  Communicator& comm_;
  std::vector<Bucket> buckets_;
  float* grads_;
  size_t next_ = 0;  // first bucket not started yet
};

}  // namespace mnist_dist
