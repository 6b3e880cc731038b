// Fused softmax + cross-entropy over logits (N, K) with uint8 labels: loss, accuracy and
// dL/dlogits = (softmax − onehot)·scale in one pass. scale = 1 / (global batch size), so the
// gradients of all ranks sum to the gradient of the global-batch mean loss.
#pragma once

#include <cstdint>
#include <memory>

#include "core/context.h"
#include "core/tensor.h"

namespace mnist_dist {

struct LossStats {
  double loss_sum = 0.0;   // Σ over the samples of −log p[label]
  int64_t correct = 0;     // samples whose arg-max equals the label
  int64_t count = 0;
};

class SoftmaxCrossEntropy {
 public:
  virtual ~SoftmaxCrossEntropy() = default;
  // dlogits may be nullptr (evaluation); predictions (N) may be nullptr.
  virtual LossStats run(Context& ctx, const Tensor& logits, const uint8_t* labels, float scale,
                        float* dlogits, int32_t* predictions) = 0;
};

std::unique_ptr<SoftmaxCrossEntropy> make_softmax_xent(Backend backend);

}  // namespace mnist_dist
