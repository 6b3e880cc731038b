// Constructors of the CUDA implementations. In a build without CUDA they are defined by
// cuda_unavailable.cpp and fail with a clear message; CMake picks which file is compiled.
#pragma once

#include "layers/batchnorm.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/softmax_xent.h"

namespace mnist_dist {

LayerPtr make_conv2d_cuda(const Conv2dConfig& config);
LayerPtr make_batchnorm_cuda(const BatchNormConfig& config);
LayerPtr make_dense_cuda(const DenseConfig& config);
LayerPtr make_relu_cuda();
LayerPtr make_maxpool2_cuda();
LayerPtr make_flatten_cuda();
LayerPtr make_dropout_cuda(const DropoutConfig& cfg);
// Fused softmax cross-entropy; logits, labels, dlogits and predictions in device memory.
std::unique_ptr<SoftmaxCrossEntropy> make_softmax_xent_cuda();

}  // namespace mnist_dist
