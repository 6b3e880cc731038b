// Softmax cross-entropy on the GPU: one fused kernel, one block, each thread a strided set of
// rows through xent::row (layers/math/xent_math.h, shared with the CPU), the loss (double) and
// correct count summed by a fixed tree (deterministic), written to a small device buffer and
// copied back to pinned host memory — run() returns host LossStats, so it waits for the stream.
// Rows are few (≤ a few thousand) and have ~10 logits, so one block is plenty.
#include <cstdint>

#include "core/error.h"
#include "cuda/block_reduce.cuh"
#include "cuda/checks.h"
#include "cuda/cuda_context.h"
#include "layers/backend_cuda.h"
#include "layers/math/xent_math.h"

namespace mnist_dist {
namespace {

constexpr int kXentBlock = 1024;

struct XentResult {
  double loss_sum;
  long long correct;
  long long bad_labels;  // labels ≥ k (the CPU checks each; here counted and reported)
};

static __global__ void softmax_xent_kernel(const float* __restrict__ logits,
                                           const uint8_t* __restrict__ labels, int n, int k,
                                           float scale, float* __restrict__ dlogits,
                                           int32_t* __restrict__ predictions,
                                           XentResult* __restrict__ out) {
  __shared__ double dscratch[32];
  __shared__ long long iscratch[32];
  double loss = 0.0;
  long long correct = 0, bad = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const int label = labels[i];
    if (label >= k) {
      ++bad;
      continue;
    }
    int pred = 0;
    const size_t off = static_cast<size_t>(i) * k;
    loss += xent::row(logits + off, k, label, scale, dlogits == nullptr ? nullptr : dlogits + off,
                      &pred);
    correct += pred == label;
    if (predictions != nullptr) predictions[i] = pred;
  }
  loss = cuda::block_sum(loss, dscratch);
  correct = cuda::block_sum(correct, iscratch);
  bad = cuda::block_sum(bad, iscratch);
  if (threadIdx.x == 0) *out = XentResult{loss, correct, bad};
}

class SoftmaxCrossEntropyCuda final : public SoftmaxCrossEntropy {
 public:
  SoftmaxCrossEntropyCuda() {
    MD_CUDA(cudaMalloc(&result_, sizeof(XentResult)));
    MD_CUDA(cudaMallocHost(&host_, sizeof(XentResult)));
  }
  ~SoftmaxCrossEntropyCuda() override {
    cudaFree(result_);
    cudaFreeHost(host_);
  }
  SoftmaxCrossEntropyCuda(const SoftmaxCrossEntropyCuda&) = delete;
  SoftmaxCrossEntropyCuda& operator=(const SoftmaxCrossEntropyCuda&) = delete;

  // logits, labels, dlogits, predictions: device memory.
  LossStats run(Context& ctx, const Tensor& logits, const uint8_t* labels, float scale,
                float* dlogits, int32_t* predictions) override {
    const int n = logits.shape.n, k = static_cast<int>(logits.shape.per_sample());
    if (n == 0) return LossStats{0.0, 0, 0};
    MD_CHECK(k >= 1, "softmax over no classes");
    const cudaStream_t s = ctx.cuda->stream();
    softmax_xent_kernel<<<1, kXentBlock, 0, s>>>(logits.data, labels, n, k, scale, dlogits,
                                                 predictions, result_);
    MD_CUDA_LAUNCH("softmax_xent_kernel");
    MD_CUDA(cudaMemcpyAsync(host_, result_, sizeof(XentResult), cudaMemcpyDeviceToHost, s));
    MD_CUDA(cudaStreamSynchronize(s));
    MD_CHECK(host_->bad_labels == 0, "label out of range (" + std::to_string(host_->bad_labels) +
                                         " labels >= " + std::to_string(k) + ")");
    return LossStats{host_->loss_sum, static_cast<int64_t>(host_->correct), n};
  }

 private:
  XentResult* result_ = nullptr;  // device
  XentResult* host_ = nullptr;    // pinned host
};

}  // namespace

std::unique_ptr<SoftmaxCrossEntropy> make_softmax_xent_cuda() {
  return std::make_unique<SoftmaxCrossEntropyCuda>();
}

}  // namespace mnist_dist
