// Per-row softmax cross-entropy math shared by the CPU loop and the fused CUDA kernel.
#pragma once

#include <math.h>

#include "core/hostdev.h"

namespace mnist_dist::xent {

// For one row of `k` logits with label `label`: writes (softmax − onehot)·scale into `dlogits`
// (when non-null), returns the loss −log softmax[label] (computed stably with the max shift),
// and sets *predicted to the arg-max (first on ties).
MD_HD float row(const float* logits, int k, int label, float scale, float* dlogits,
                int* predicted) {
  float mx = logits[0];
  int arg = 0;
  for (int j = 1; j < k; ++j)
    if (logits[j] > mx) { mx = logits[j]; arg = j; }
  float sum = 0.0f;
  for (int j = 0; j < k; ++j) sum += expf(logits[j] - mx);
  const float log_sum = logf(sum);
  if (dlogits != nullptr) {
    for (int j = 0; j < k; ++j) {
      const float p = expf(logits[j] - mx - log_sum);
      dlogits[j] = (p - (j == label ? 1.0f : 0.0f)) * scale;
    }
  }
  *predicted = arg;
  return log_sum - (logits[label] - mx);
}

}  // namespace mnist_dist::xent
