// BatchNorm over (N, H, W) per channel, Keras defaults (momentum 0.99, epsilon 1e-3).
// Training: batch statistics, reduced over all ranks when ctx.sync_bn (SyncBatchNorm);
// the running variance uses the unbiased batch variance (as TF's fused kernel and PyTorch).
// Evaluation: running statistics. Parameters weight (γ), bias (β); state running_mean/var.
#pragma once

#include "layers/layer.h"

namespace mnist_dist {

struct BatchNormConfig {
  int channels = 1;
  float momentum = 0.99f;
  float epsilon = 1e-3f;
};

LayerPtr make_batchnorm(Backend backend, const BatchNormConfig& config);

}  // namespace mnist_dist
