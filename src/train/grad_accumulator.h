// Gradient accumulation (--accumulate K): the sum of the first K−1 micro-steps' gradients,
// kept in the backend's memory; the last micro-step adds it to each layer's freshly computed
// gradients just before the gradient exchange sees that layer, so the exchange and the Adam
// step run once per optimizer step, on the whole group's gradient.
#pragma once

#include <cstddef>

#include "core/context.h"
#include "cuda/buffer.h"

namespace mnist_dist {

class GradAccumulator {
 public:
  GradAccumulator(Backend backend, size_t count) : sum_(backend, count) {}
  // After a micro-step's backward (not the group's last): the sum so far, or its start.
  void take(Context& ctx, const float* grads, bool first);
  // In the last micro-step, per layer: grads[begin, end) += the sum.
  void add_to(Context& ctx, float* grads, size_t begin, size_t end) const;

 private:
  Buffer<float> sum_;
};

}  // namespace mnist_dist
