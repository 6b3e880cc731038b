// Softmax cross-entropy on the GPU: one fused kernel, one block, each thread a strided set of
// rows through xent::row (layers/math/xent_math.h, shared with the CPU), the loss (double) and
// correct count summed by a fixed tree (deterministic). run() (evaluation) copies them back to
// pinned host memory and waits; accumulate() (training) adds them to a device-side accumulator
// that read_back() fetches once per window, so a training step never waits for the host.
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
  long long count;
  long long bad_labels;       // labels ≥ k (the CPU checks each; here counted and reported)
  long long first_bad_tag1;   // 1 + the tag of the first non-finite step; 0: none (so that a
                              // zeroed accumulator is an empty one)
};

// Where the kernel's thread 0 puts one batch's sums: replacing *out (run) or adding to it
// (accumulate; kernels on one stream run one after another, so no atomics are needed).
struct XentSink {
  XentResult* out;
  bool add;
  long long tag;
};

static __global__ void softmax_xent_kernel(const float* __restrict__ logits,
                                           const uint8_t* __restrict__ labels, int n, int k,
                                           float scale, float* __restrict__ dlogits,
                                           int32_t* __restrict__ predictions, XentSink sink) {
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
  if (threadIdx.x != 0) return;
  XentResult* out = sink.out;
  if (!sink.add) {
    *out = XentResult{loss, correct, n, bad, 0};
    return;
  }
  out->loss_sum += loss;
  out->correct += correct;
  out->count += n;
  out->bad_labels += bad;
  if (!isfinite(loss) && out->first_bad_tag1 == 0) out->first_bad_tag1 = sink.tag + 1;
}

class SoftmaxCrossEntropyCuda final : public SoftmaxCrossEntropy {
 public:
  SoftmaxCrossEntropyCuda() {
    MD_CUDA(cudaMalloc(&result_, sizeof(XentResult)));
    MD_CUDA(cudaMalloc(&window_, sizeof(XentResult)));
    MD_CUDA(cudaMemset(window_, 0, sizeof(XentResult)));
    MD_CUDA(cudaMallocHost(&host_, sizeof(XentResult)));
  }
  ~SoftmaxCrossEntropyCuda() override {
    cudaFree(result_);
    cudaFree(window_);
    cudaFreeHost(host_);
  }
  SoftmaxCrossEntropyCuda(const SoftmaxCrossEntropyCuda&) = delete;
  SoftmaxCrossEntropyCuda& operator=(const SoftmaxCrossEntropyCuda&) = delete;

  // logits, labels, dlogits, predictions: device memory.
  LossStats run(Context& ctx, const Tensor& logits, const uint8_t* labels, float scale,
                float* dlogits, int32_t* predictions) override {
    if (logits.shape.n == 0) return LossStats{0.0, 0, 0};
    launch(ctx, logits, labels, scale, dlogits, predictions, XentSink{result_, false, 0});
    const XentResult r = fetch(ctx, result_);
    return LossStats{r.loss_sum, static_cast<int64_t>(r.correct), static_cast<int64_t>(r.count)};
  }

  void accumulate(Context& ctx, const Tensor& logits, const uint8_t* labels, float scale,
                  float* dlogits, int64_t tag) override {
    if (logits.shape.n == 0) return;
    launch(ctx, logits, labels, scale, dlogits, nullptr, XentSink{window_, true, tag});
    stream_ = ctx.cuda->stream();
  }

  LossWindow read_back() override {
    if (stream_ == nullptr) return LossWindow{};  // nothing accumulated yet
    const XentResult r = fetch_on(stream_, window_);
    MD_CUDA(cudaMemsetAsync(window_, 0, sizeof(XentResult), stream_));  // ordered before the next step
    LossWindow w;
    w.sums = LossStats{r.loss_sum, static_cast<int64_t>(r.correct), static_cast<int64_t>(r.count)};
    w.first_nonfinite_tag = r.first_bad_tag1 - 1;
    return w;
  }

 private:
  void launch(Context& ctx, const Tensor& logits, const uint8_t* labels, float scale,
              float* dlogits, int32_t* predictions, XentSink sink) {
    const int n = logits.shape.n, k = static_cast<int>(logits.shape.per_sample());
    MD_CHECK(k >= 1, "softmax over no classes");
    k_ = k;
    softmax_xent_kernel<<<1, kXentBlock, 0, ctx.cuda->stream()>>>(logits.data, labels, n, k, scale,
                                                                  dlogits, predictions, sink);
    MD_CUDA_LAUNCH("softmax_xent_kernel");
  }
  XentResult fetch(Context& ctx, const XentResult* from) { return fetch_on(ctx.cuda->stream(), from); }
  // The host waits here (once per evaluation batch, or once per training window).
  XentResult fetch_on(cudaStream_t s, const XentResult* from) {
    MD_CUDA(cudaMemcpyAsync(host_, from, sizeof(XentResult), cudaMemcpyDeviceToHost, s));
    MD_CUDA(cudaStreamSynchronize(s));
    MD_CHECK(host_->bad_labels == 0, "label out of range (" + std::to_string(host_->bad_labels) +
                                         " labels >= " + std::to_string(k_) + ")");
    return *host_;
  }

  XentResult* result_ = nullptr;  // device: run()'s batch
  XentResult* window_ = nullptr;  // device: accumulate()'s running sums
  XentResult* host_ = nullptr;    // pinned host
  cudaStream_t stream_ = nullptr;  // the compute stream accumulate() used
  int k_ = 0;
};

}  // namespace

std::unique_ptr<SoftmaxCrossEntropy> make_softmax_xent_cuda() {
  return std::make_unique<SoftmaxCrossEntropyCuda>();
}

}  // namespace mnist_dist
