// Layer constructors by backend: the backend is fixed here, when a layer is built.
#include "layers/backend_cpu.h"
#include "layers/backend_cuda.h"
#include "layers/dropout.h"
#include "layers/elementwise.h"

namespace mnist_dist {

LayerPtr make_conv2d(Backend b, const Conv2dConfig& c) {
  return b == Backend::kCuda ? make_conv2d_cuda(c) : make_conv2d_cpu(c);
}
LayerPtr make_batchnorm(Backend b, const BatchNormConfig& c) {
  return b == Backend::kCuda ? make_batchnorm_cuda(c) : make_batchnorm_cpu(c);
}
LayerPtr make_dense(Backend b, const DenseConfig& c) {
  return b == Backend::kCuda ? make_dense_cuda(c) : make_dense_cpu(c);
}
LayerPtr make_relu(Backend b) { return b == Backend::kCuda ? make_relu_cuda() : make_relu_cpu(); }
LayerPtr make_maxpool2(Backend b) {
  return b == Backend::kCuda ? make_maxpool2_cuda() : make_maxpool2_cpu();
}
LayerPtr make_flatten(Backend b) {
  return b == Backend::kCuda ? make_flatten_cuda() : make_flatten_cpu();
}
LayerPtr make_dropout(Backend b, const DropoutConfig& c) {
  return b == Backend::kCuda ? make_dropout_cuda(c) : make_dropout_cpu(c);
}

}  // namespace mnist_dist
