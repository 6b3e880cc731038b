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

// What a training window's steps summed (SoftmaxCrossEntropy::read_back).
struct LossWindow {
  LossStats sums;
  int64_t first_nonfinite_tag = -1;  // `tag` of the first step whose loss was not finite; -1: none
};

class SoftmaxCrossEntropy {
 public:
  virtual ~SoftmaxCrossEntropy() = default;
  // One batch, its statistics returned at once (the GPU waits for them: evaluation).
  // dlogits may be nullptr (evaluation); predictions (N) may be nullptr.
  virtual LossStats run(Context& ctx, const Tensor& logits, const uint8_t* labels, float scale,
                        float* dlogits, int32_t* predictions) = 0;

  // Training: like run() with dlogits, but the statistics are added up where they are computed
  // (a device-side accumulator on the GPU: no host wait per step) until read_back(), which
  // returns the sums since the previous read_back() and the `tag` of the first step whose loss
  // was not finite. A label out of range is an internal error, raised here (CPU) or at
  // read_back() (GPU).
  virtual void accumulate(Context& ctx, const Tensor& logits, const uint8_t* labels, float scale,
                          float* dlogits, int64_t tag) = 0;
  virtual LossWindow read_back() = 0;
};

std::unique_ptr<SoftmaxCrossEntropy> make_softmax_xent(Backend backend);

}  // namespace mnist_dist
