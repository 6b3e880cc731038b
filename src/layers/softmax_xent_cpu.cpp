// Softmax cross-entropy on CPU: one row per sample through xent::row (shared with CUDA), the
// rows split over the ctx.threads.
#include <cmath>
#include <utility>

#include "core/error.h"
#include "layers/backend_cuda.h"
#include "layers/cpu_context.h"
#include "layers/math/xent_math.h"
#include "layers/softmax_xent.h"

namespace mnist_dist {
namespace {

class SoftmaxCrossEntropyCpu final : public SoftmaxCrossEntropy {
 public:
  LossStats run(Context& ctx, const Tensor& logits, const uint8_t* labels, float scale,
                float* dlogits, int32_t* predictions) override {
    const int n = logits.shape.n, k = static_cast<int>(logits.shape.per_sample());
    double loss = 0.0;
    int64_t correct = 0;
#pragma omp parallel for reduction(+ : loss, correct) schedule(static) num_threads(team_size(ctx))
    for (int i = 0; i < n; ++i) {
      MD_CHECK(labels[i] < k, "label out of range");
      int pred = 0;
      loss += xent::row(logits.data + static_cast<size_t>(i) * k, k, labels[i], scale,
                        dlogits == nullptr ? nullptr : dlogits + static_cast<size_t>(i) * k, &pred);
      correct += pred == labels[i];
      if (predictions != nullptr) predictions[i] = pred;
    }
    return LossStats{loss, correct, n};
  }

  void accumulate(Context& ctx, const Tensor& logits, const uint8_t* labels, float scale,
                  float* dlogits, int64_t tag) override {
    const LossStats s = run(ctx, logits, labels, scale, dlogits, nullptr);
    window_.sums.loss_sum += s.loss_sum;
    window_.sums.correct += s.correct;
    window_.sums.count += s.count;
    if (!std::isfinite(s.loss_sum) && window_.first_nonfinite_tag < 0) window_.first_nonfinite_tag = tag;
  }

  LossWindow read_back() override { return std::exchange(window_, LossWindow{}); }

 private:
  LossWindow window_;
};

}  // namespace

std::unique_ptr<SoftmaxCrossEntropy> make_softmax_xent_cpu() {
  return std::make_unique<SoftmaxCrossEntropyCpu>();
}

std::unique_ptr<SoftmaxCrossEntropy> make_softmax_xent(Backend backend) {
  return backend == Backend::kCuda ? make_softmax_xent_cuda() : make_softmax_xent_cpu();
}

}  // namespace mnist_dist
