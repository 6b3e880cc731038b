// Fully connected layer y = x·Wᵀ + b with W of shape (out, in) as in PyTorch's nn.Linear.
#pragma once

#include "layers/layer.h"

namespace mnist_dist {

struct DenseConfig {
  int in_features = 1;
  int out_features = 1;
};

LayerPtr make_dense(Backend backend, const DenseConfig& config);

}  // namespace mnist_dist
