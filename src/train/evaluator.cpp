// Evaluator: forward passes in inference mode over a split, loss and accuracy summed in double.
#include "train/evaluator.h"

#include <algorithm>

namespace mnist_dist {

EvalResult evaluate(Context& ctx, Model& model, SoftmaxCrossEntropy& loss, const SplitData& data,
                    std::vector<int32_t>* predictions) {
  const size_t pixels = model.input_shape().per_sample();
  const size_t batch = static_cast<size_t>(model.max_batch());
  if (predictions != nullptr) predictions->assign(data.n, 0);
  double loss_sum = 0.0;
  int64_t correct = 0;
  for (size_t begin = 0; begin < data.n; begin += batch) {
    const int n = static_cast<int>(std::min(batch, data.n - begin));
    const Tensor& logits = model.forward(ctx, data.images.data() + begin * pixels, n, false);
    const LossStats s = loss.run(ctx, logits, data.labels.data() + begin, 1.0f, nullptr,
                                 predictions != nullptr ? predictions->data() + begin : nullptr);
    loss_sum += s.loss_sum;
    correct += s.correct;
  }
  EvalResult r;
  r.count = static_cast<int64_t>(data.n);
  if (data.n > 0) {
    r.loss = loss_sum / static_cast<double>(data.n);
    r.accuracy = static_cast<double>(correct) / static_cast<double>(data.n);
  }
  return r;
}

}  // namespace mnist_dist
