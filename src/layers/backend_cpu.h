// Constructors of the CPU implementations (one per layer file *_cpu.cpp).
#pragma once

#include "layers/batchnorm.h"
#include "layers/conv2d.h"
#include "layers/dense.h"

namespace mnist_dist {

LayerPtr make_conv2d_cpu(const Conv2dConfig& config);
LayerPtr make_batchnorm_cpu(const BatchNormConfig& config);
LayerPtr make_dense_cpu(const DenseConfig& config);
LayerPtr make_relu_cpu();
LayerPtr make_maxpool2_cpu();
LayerPtr make_flatten_cpu();
LayerPtr make_dropout_cpu(const DropoutConfig& cfg);

}  // namespace mnist_dist
