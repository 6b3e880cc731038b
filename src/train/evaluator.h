// Evaluation of a model on a whole split held in memory (rank 0): mean loss and accuracy,
// BatchNorm in inference mode, in batches of at most the model's max batch.
#pragma once

#include <cstdint>
#include <vector>

#include "core/context.h"
#include "layers/softmax_xent.h"
#include "model/model.h"

namespace mnist_dist {

struct EvalResult {
  double loss = 0.0;      // mean cross-entropy
  double accuracy = 0.0;  // fraction correct
  int64_t count = 0;
  int weights_epoch = 0;  // the epoch whose weights were evaluated (early stopping's best); 0: the last
};

// A split in memory: pixels as float in [0, 1] (n, 1, rows, cols) and labels.
struct SplitData {
  size_t n = 0;
  std::vector<float> images;
  std::vector<uint8_t> labels;
};

// predictions (optional): arg-max class per sample.
EvalResult evaluate(Context& ctx, Model& model, SoftmaxCrossEntropy& loss, const SplitData& data,
                    std::vector<int32_t>* predictions = nullptr);

}  // namespace mnist_dist
