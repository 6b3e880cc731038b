// Evaluator: forward passes in inference mode over a split, loss and accuracy summed in double.
#include "train/evaluator.h"

#include <algorithm>

#include "cuda/buffer.h"

namespace mnist_dist {

EvalResult evaluate(Context& ctx, Model& model, SoftmaxCrossEntropy& loss, const SplitData& data,
                    std::vector<int32_t>* predictions) {
  const size_t pixels = model.input_shape().per_sample();
  const size_t batch = static_cast<size_t>(model.max_batch());
  if (predictions != nullptr) predictions->assign(data.n, 0);
  double loss_sum = 0.0;
  int64_t correct = 0;
  // On a GPU each batch is staged into device memory (allocated here, outside the step loop).
  const bool device = model.backend() != Backend::kCpu;
  Buffer<float> images(model.backend(), device ? batch * pixels : 0);
  Buffer<uint8_t> labels(model.backend(), device ? batch : 0);
  Buffer<int32_t> preds(model.backend(), device && predictions != nullptr ? batch : 0);
  for (size_t begin = 0; begin < data.n; begin += batch) {
    const int n = static_cast<int>(std::min(batch, data.n - begin));
    const float* x = data.images.data() + begin * pixels;
    const uint8_t* y = data.labels.data() + begin;
    int32_t* p = predictions != nullptr ? predictions->data() + begin : nullptr;
    if (device) {
      images.upload(x, static_cast<size_t>(n) * pixels);
      labels.upload(y, static_cast<size_t>(n));
      x = images.data();
      y = labels.data();
      if (p != nullptr) p = preds.data();
    }
    const Tensor& logits = model.forward(ctx, x, n, false);
    const LossStats s = loss.run(ctx, logits, y, 1.0f, nullptr, p);
    if (device && p != nullptr) preds.download(predictions->data() + begin, static_cast<size_t>(n));
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
