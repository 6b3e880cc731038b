// Bucket layout and the start/progress/wait sequence of the gradient all-reduce.
#include "comm/grad_buckets.h"

#include <algorithm>

#include "core/error.h"

namespace mnist_dist {

std::vector<Bucket> make_buckets(const std::vector<std::pair<size_t, size_t>>& layer_ranges,
                                 size_t bucket_floats) {
  MD_CHECK(bucket_floats > 0, "bucket size must be positive");
  std::vector<std::pair<size_t, size_t>> ranges;
  for (const auto& r : layer_ranges)
    if (r.second > r.first) ranges.push_back(r);
  std::vector<Bucket> out;
  if (ranges.empty()) return out;
  size_t open_end = ranges.back().second;  // top of the bucket being filled
  for (size_t i = ranges.size(); i-- > 0;) {
    const size_t lo = ranges[i].first;
    // Cut full buckets off the top (a layer larger than a bucket becomes several pieces).
    while (open_end - lo > bucket_floats) {
      out.push_back({open_end - bucket_floats, open_end});
      open_end -= bucket_floats;
    }
    // Close at this layer's start once the bucket is at least half full, and at the bottom.
    if (open_end > lo && (open_end - lo >= bucket_floats / 2 || i == 0)) {
      out.push_back({lo, open_end});
      open_end = lo;
    }
  }
  // Buckets must tile [front.first, top) without overlap, last-first.
  for (size_t b = 1; b < out.size(); ++b) MD_CHECK(out[b].end == out[b - 1].begin, "bucket tiling");
  return out;
}

GradientReducer::GradientReducer(Communicator& comm, std::vector<Bucket> buckets, float* grads)
    : comm_(comm), buckets_(std::move(buckets)), grads_(grads) {}

void GradientReducer::ready_from(size_t ready_from) {
  if (comm_.size() == 1) return;
  while (next_ < buckets_.size() && buckets_[next_].begin >= ready_from) {
    const Bucket& b = buckets_[next_++];
    comm_.start_allreduce_sum(grads_ + b.begin, b.end - b.begin);
  }
  comm_.progress();
}

void GradientReducer::finish() {
  if (comm_.size() > 1) {
    while (next_ < buckets_.size()) {
      const Bucket& b = buckets_[next_++];
      comm_.start_allreduce_sum(grads_ + b.begin, b.end - b.begin);
    }
    comm_.wait_all();
  }
  next_ = 0;
}

}  // namespace mnist_dist
