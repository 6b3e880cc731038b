// CUDA layer constructors for builds without the CUDA backend: a clear user error.
#include "core/error.h"
#include "layers/backend_cuda.h"

namespace mnist_dist {
namespace {
[[noreturn]] void no_cuda() {
  throw UserError(
      "this mnist_dist was built without the CUDA backend: rebuild with nvcc available "
      "(-DMNIST_DIST_CUDA=ON), or run with --device cpu");
}
}  // namespace

LayerPtr make_conv2d_cuda(const Conv2dConfig&) { no_cuda(); }
LayerPtr make_batchnorm_cuda(const BatchNormConfig&) { no_cuda(); }
LayerPtr make_dense_cuda(const DenseConfig&) { no_cuda(); }
LayerPtr make_relu_cuda() { no_cuda(); }
LayerPtr make_maxpool2_cuda() { no_cuda(); }
LayerPtr make_flatten_cuda() { no_cuda(); }
std::unique_ptr<SoftmaxCrossEntropy> make_softmax_xent_cuda() { no_cuda(); }

}  // namespace mnist_dist
