// CUDA layer constructors (and the one exact_grad_cuda.h function non-CUDA code calls) for
// builds without the CUDA backend: the user error of no_cuda() (cuda/runtime_unavailable.cpp),
// which says how to get a CUDA build.
#include "cuda/cuda_runtime_api.h"
#include "layers/backend_cuda.h"
#include "layers/exact_grad_cuda.h"

namespace mnist_dist {

LayerPtr make_conv2d_cuda(const Conv2dConfig&) { no_cuda(); }
LayerPtr make_batchnorm_cuda(const BatchNormConfig&) { no_cuda(); }
LayerPtr make_dense_cuda(const DenseConfig&) { no_cuda(); }
LayerPtr make_relu_cuda() { no_cuda(); }
LayerPtr make_maxpool2_cuda() { no_cuda(); }
LayerPtr make_flatten_cuda() { no_cuda(); }
LayerPtr make_dropout_cuda(const DropoutConfig&) { no_cuda(); }
std::unique_ptr<SoftmaxCrossEntropy> make_softmax_xent_cuda() { no_cuda(); }
void exact::unfold_cuda(const int64_t*, size_t, float*, CudaContext&) { no_cuda(); }

}  // namespace mnist_dist
