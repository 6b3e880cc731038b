// Conv2d on the GPU (forward and backward of Conv2dBase) with conv2d_cpu.cpp's semantics
// (cross-correlation, stride 1, 'same'/'valid' zero padding, bias): cuDNN forward / backward-data / backward-filter, plus own kernels for the
// bias (add, and its gradient as a deterministic two-stage channel sum).
//
// cuDNN API: the classic convolution API (cudnnConvolutionForward & co.). cuDNN 9 marks it
// deprecated in favour of the graph API, but it is still shipped, complete and supported for
// fp32 NCHW, and it is what this layer needs in a tenth of the code of the backend descriptors.
// The deprecation warnings (emitted only when CUDNN_WARN_DEPRECATED is defined) are silenced in
// this one file, the only user of the deprecated entry points; revisit when cuDNN drops them.
//
// Algorithms: chosen once per (batch size, TF32 on/off) with the cudnnGet*_v7 heuristics (host
// only: no device sync, no allocation, the same choice on every rank), the best-ranked one that
// fits the context's shared workspace, with deterministic algorithms required for the backward
// passes; the plans are cached (a training run sees at most three batch sizes: full, last
// partial, evaluation). The rules (math types, TF32 off = no FFT/Winograd): layers/conv_algo_choice.h.
//
// Deterministic training (ctx.chunk > 0): every cuDNN call runs per chunk of samples, so that its
// shape, and with it the algorithm and its summation order, is fixed by the global batch (the
// heuristics are host logic: the same choice on every rank of one GPU model and cuDNN version);
// each chunk's weight and bias gradients go through float scratch into fixed point
// (layers/exact_grad_cuda.h).
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
#pragma nv_diag_suppress 1444
#pragma nv_diag_suppress 1215

#include <cudnn.h>

#include <algorithm>
#include <map>
#include <memory>
#include <utility>

#include "core/error.h"
#include "layers/conv_algo_choice.h"
#include "cuda/block_reduce.cuh"
#include "cuda/buffer.h"
#include "cuda/checks.h"
#include "cuda/cuda_context.h"
#include "cuda/launch.h"
#include "layers/backend_cuda.h"
#include "layers/conv2d.h"
#include "layers/exact_grad_cuda.h"

namespace mnist_dist {
namespace {

constexpr int kMaxParts = 64;  // partial sums per channel for the bias gradient
constexpr int kReduceBlock = 256;

// y (N, C, HW) += b[c]
static __global__ void add_channel_bias_kernel(float* __restrict__ y, const float* __restrict__ b,
                                               size_t total, int c, int hw) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < total;
       i += size_t{gridDim.x} * blockDim.x)
    y[i] += b[i / hw % c];
}

// partials[part·C + ch] = Σ dy over samples [part·n/parts, (part+1)·n/parts) of channel ch.
static __global__ void bias_grad_partials_kernel(const float* __restrict__ dy, int n, int c, int hw,
                                                 int parts, double* __restrict__ partials) {
  __shared__ double scratch[32];
  const int part = blockIdx.x, ch = blockIdx.y;
  const int begin = static_cast<int>(static_cast<long long>(part) * n / parts);
  const int end = static_cast<int>(static_cast<long long>(part + 1) * n / parts);
  double s = 0.0;
  for (int i = begin; i < end; ++i) {
    const float* p = dy + (static_cast<size_t>(i) * c + ch) * hw;
    for (int j = threadIdx.x; j < hw; j += blockDim.x) s += p[j];
  }
  s = cuda::block_sum(s, scratch);
  if (threadIdx.x == 0) partials[static_cast<size_t>(part) * c + ch] = s;
}

// One warp per channel: db[ch] = Σ partials (fixed order).
static __global__ void bias_grad_finish_kernel(const double* __restrict__ partials, int parts, int c,
                                               float* __restrict__ db) {
  const int ch = blockIdx.x;
  double s = 0.0;
  for (int p = threadIdx.x; p < parts; p += 32) s += partials[static_cast<size_t>(p) * c + ch];
  s = cuda::warp_sum(s);
  if (threadIdx.x == 0) db[ch] = static_cast<float>(s);
}

// Owning cuDNN descriptors (move-free: held by unique_ptr or as members).
struct TensorDesc {
  TensorDesc() { MD_CUDNN(cudnnCreateTensorDescriptor(&d)); }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
  cudnnTensorDescriptor_t d = nullptr;
};
struct FilterDesc {
  FilterDesc() { MD_CUDNN(cudnnCreateFilterDescriptor(&d)); }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
  cudnnFilterDescriptor_t d = nullptr;
};
struct ConvDesc {
  ConvDesc() { MD_CUDNN(cudnnCreateConvolutionDescriptor(&d)); }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
  cudnnConvolutionDescriptor_t d = nullptr;
};

// Everything cuDNN needs for one batch size: descriptors and the chosen algorithms. Each
// direction has its own convolution descriptor because the math type belongs to it.
struct Plan {
  TensorDesc x, y;
  ConvDesc fwd_conv, data_conv, filter_conv;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t data{};
  cudnnConvolutionBwdFilterAlgo_t filter{};
  size_t fwd_bytes = 0, data_bytes = 0, filter_bytes = 0;
  bool backward_deterministic = false;  // both backward algorithms are CUDNN_DETERMINISTIC
};

class Conv2dCuda final : public Conv2dBase {
 public:
  explicit Conv2dCuda(const Conv2dConfig& c) : Conv2dBase(c) {}

  void reserve(const Shape& in) override {
    reserved_batch_ = in.n;
    MD_CUDNN(cudnnSetFilter4dDescriptor(filter_.d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                        cfg_.out_channels, cfg_.in_channels, cfg_.kernel,
                                        cfg_.kernel));
    partials_ = Buffer<double>(Backend::kCuda, static_cast<size_t>(kMaxParts) * cfg_.out_channels);
    chunk_dw_ = Buffer<float>();  // sized by the first deterministic backward
  }

  void forward(Context& ctx, ParamArena& a, const Tensor& x, Tensor& y, bool) override {
    const int n = x.shape.n;
    if (n == 0) return;
    CudaContext& cu = *ctx.cuda;
    const float one = 1.0f, zero = 0.0f;
    for_chunks(ctx, x, y, [&](const Plan& p, size_t in_off, size_t out_off, int) {
      MD_CUDNN(cudnnConvolutionForward(cu.cudnn(), &one, p.x.d, x.data + in_off, filter_.d, a.param(w_),
                                       p.fwd_conv.d, p.fwd, cu.workspace(), p.fwd_bytes, &zero, p.y.d,
                                       y.data + out_off));
    });
    const size_t total = y.size();
    add_channel_bias_kernel<<<cuda::grid_1d(total), cuda::kBlock, 0, cu.stream()>>>(
        y.data, a.param(b_), total, cfg_.out_channels, y.shape.h * y.shape.w);
    MD_CUDA_LAUNCH("add_channel_bias_kernel");
  }

  void backward(Context& ctx, ParamArena& a, const Tensor& x, const Tensor& y, const Tensor& dy,
                Tensor& dx) override {
    const int n = x.shape.n;
    CudaContext& cu = *ctx.cuda;
    float* dw = a.grad(w_);
    float* db = a.grad(b_);
    if (ctx.exact_grads != nullptr) return backward_exact(ctx, a, x, y, dy, dx);
    if (n == 0) {  // an empty slice contributes zero gradients (backward overwrites)
      MD_CUDA(cudaMemsetAsync(dw, 0, a.info(w_).count * sizeof(float), cu.stream()));
      MD_CUDA(cudaMemsetAsync(db, 0, a.info(b_).count * sizeof(float), cu.stream()));
      return;
    }
    const Plan& p = plan(cu, x.shape);
    const float one = 1.0f, zero = 0.0f;
    MD_CUDNN(cudnnConvolutionBackwardFilter(cu.cudnn(), &one, p.x.d, x.data, p.y.d, dy.data,
                                            p.filter_conv.d, p.filter, cu.workspace(),
                                            p.filter_bytes, &zero, filter_.d, dw));
    bias_grad(cu, dy.data, n, y.shape.h * y.shape.w, db);
    if (dx.data != nullptr)
      MD_CUDNN(cudnnConvolutionBackwardData(cu.cudnn(), &one, filter_.d, a.param(w_), p.y.d,
                                            dy.data, p.data_conv.d, p.data, cu.workspace(),
                                            p.data_bytes, &zero, p.x.d, dx.data));
  }

 private:
  // db[o] = Σ_{n, h, w} dy over n samples: partial sums over sample ranges, then a fixed-order
  // finish.
  void bias_grad(CudaContext& cu, const float* dy, int n, int hw, float* db) {
    const int o = cfg_.out_channels, parts = std::min(n, kMaxParts);
    bias_grad_partials_kernel<<<dim3(parts, o), kReduceBlock, 0, cu.stream()>>>(dy, n, o, hw, parts,
                                                                                 partials_.data());
    MD_CUDA_LAUNCH("bias_grad_partials_kernel");
    bias_grad_finish_kernel<<<o, 32, 0, cu.stream()>>>(partials_.data(), parts, o, db);
    MD_CUDA_LAUNCH("bias_grad_finish_kernel");
  }

  // f(plan, input offset, output offset, samples) for the whole batch, or (deterministic
  // training) for each chunk of ctx.chunk samples with that chunk's plan.
  template <typename F>
  void for_chunks(Context& ctx, const Tensor& x, const Tensor& y, F&& f) {
    const int n = x.shape.n;
    const int rows = ctx.chunk > 0 ? ctx.chunk : n;
    const size_t in_sample = x.size() / n, out_sample = y.size() / n;
    for (int r = 0; r < n; r += rows) {
      Shape s = x.shape;
      s.n = std::min(rows, n - r);
      f(plan(*ctx.cuda, s), r * in_sample, r * out_sample, s.n);
    }
  }

  // Deterministic training: per chunk, the weight gradient (cuDNN, then into fixed point), the
  // bias gradient (the same kernels over the chunk's samples, then into fixed point) and dx.
  void backward_exact(Context& ctx, ParamArena& a, const Tensor& x, const Tensor& y, const Tensor& dy,
                      Tensor& dx) {
    const int n = x.shape.n;
    CudaContext& cu = *ctx.cuda;
    const size_t wn = a.info(w_).count, bn = a.info(b_).count;
    int64_t* qw = ctx.exact_grads + (a.grad(w_) - a.grads());
    int64_t* qb = ctx.exact_grads + (a.grad(b_) - a.grads());
    if (n == 0) {  // no chunks here: zero sums, unless adding to a micro-step's
      if (!ctx.exact_add) {
        MD_CUDA(cudaMemsetAsync(qw, 0, wn * sizeof(int64_t), cu.stream()));
        MD_CUDA(cudaMemsetAsync(qb, 0, bn * sizeof(int64_t), cu.stream()));
      }
      return;
    }
    if (chunk_dw_.size() < wn + bn) chunk_dw_ = Buffer<float>(Backend::kCuda, wn + bn);
    float* cdw = chunk_dw_.data();
    float* cdb = cdw + wn;
    const int hw = y.shape.h * y.shape.w;
    const float one = 1.0f, zero = 0.0f;
    bool add = ctx.exact_add;
    for_chunks(ctx, x, y, [&](const Plan& p, size_t in_off, size_t out_off, int m) {
      if (!p.backward_deterministic)
        throw UserError("--deterministic: cuDNN offers no deterministic backward algorithm for a " + x.shape.str() +
                        " convolution within the workspace on this GPU; run without --deterministic");
      MD_CUDNN(cudnnConvolutionBackwardFilter(cu.cudnn(), &one, p.x.d, x.data + in_off, p.y.d, dy.data + out_off,
                                              p.filter_conv.d, p.filter, cu.workspace(), p.filter_bytes, &zero,
                                              filter_.d, cdw));
      bias_grad(cu, dy.data + out_off, m, hw, cdb);
      exact::fold_cuda(cdw, wn, add, qw, cu, exact::device_range(ctx));
      exact::fold_cuda(cdb, bn, add, qb, cu, exact::device_range(ctx));
      add = true;
      if (dx.data != nullptr)
        MD_CUDNN(cudnnConvolutionBackwardData(cu.cudnn(), &one, filter_.d, a.param(w_), p.y.d, dy.data + out_off,
                                              p.data_conv.d, p.data, cu.workspace(), p.data_bytes, &zero, p.x.d,
                                              dx.data + in_off));
    });
  }

  // The cached plan for this input shape and the context's TF32 setting; made on first use.
  const Plan& plan(CudaContext& cu, const Shape& in) {
    MD_CHECK(in.n <= reserved_batch_, "conv2d batch larger than reserved");
    const std::pair<int, bool> key{in.n, cu.allow_tf32()};
    auto it = plans_.find(key);
    if (it == plans_.end()) it = plans_.emplace(key, make_plan(cu, in)).first;
    return *it->second;
  }

  std::unique_ptr<Plan> make_plan(CudaContext& cu, const Shape& in) const {
    auto p = std::make_unique<Plan>();
    const Shape out = output_shape(in);
    const bool tf32 = cu.allow_tf32();
    const cudnnHandle_t h = cu.cudnn();
    const size_t cap = cu.workspace_bytes();
    MD_CUDNN(cudnnSetTensor4dDescriptor(p->x.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, in.n, in.c,
                                        in.h, in.w));
    MD_CUDNN(cudnnSetTensor4dDescriptor(p->y.d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, out.n, out.c,
                                        out.h, out.w));
    for (const ConvDesc* c : {&p->fwd_conv, &p->data_conv, &p->filter_conv}) {
      MD_CUDNN(cudnnSetConvolution2dDescriptor(c->d, pad_, pad_, 1, 1, 1, 1,
                                               CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
      MD_CUDNN(cudnnSetConvolutionMathType(c->d, tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    }
    int dims[4] = {};
    MD_CUDNN(cudnnGetConvolutionNdForwardOutputDim(p->fwd_conv.d, p->x.d, filter_.d, 4, dims));
    MD_CHECK(dims[0] == out.n && dims[1] == out.c && dims[2] == out.h && dims[3] == out.w,
             "cuDNN output shape differs from " + out.str());

    int count = 0;
    cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    MD_CUDNN(cudnnGetConvolutionForwardAlgorithm_v7(h, p->x.d, filter_.d, p->fwd_conv.d, p->y.d,
                                                    CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, fwd));
    const auto* f = conv_algo::choose(fwd, count, cap, tf32, false);
    MD_CHECK(f != nullptr, "no cuDNN forward algorithm for " + in.str());
    p->fwd = f->algo;
    MD_CUDNN(cudnnSetConvolutionMathType(p->fwd_conv.d, tf32 ? f->mathType : CUDNN_FMA_MATH));
    MD_CUDNN(cudnnGetConvolutionForwardWorkspaceSize(h, p->x.d, filter_.d, p->fwd_conv.d, p->y.d,
                                                     p->fwd, &p->fwd_bytes));

    cudnnConvolutionBwdDataAlgoPerf_t data[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    MD_CUDNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        h, filter_.d, p->y.d, p->data_conv.d, p->x.d, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count,
        data));
    const auto* d = conv_algo::choose(data, count, cap, tf32, true);
    MD_CHECK(d != nullptr, "no cuDNN backward-data algorithm for " + in.str());
    p->data = d->algo;
    MD_CUDNN(cudnnSetConvolutionMathType(p->data_conv.d, tf32 ? d->mathType : CUDNN_FMA_MATH));
    MD_CUDNN(cudnnGetConvolutionBackwardDataWorkspaceSize(h, filter_.d, p->y.d, p->data_conv.d,
                                                          p->x.d, p->data, &p->data_bytes));

    cudnnConvolutionBwdFilterAlgoPerf_t filt[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    MD_CUDNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        h, p->x.d, p->y.d, p->filter_conv.d, filter_.d, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
        &count, filt));
    const auto* w = conv_algo::choose(filt, count, cap, tf32, true);
    MD_CHECK(w != nullptr, "no cuDNN backward-filter algorithm for " + in.str());
    p->filter = w->algo;
    p->backward_deterministic = d->determinism == CUDNN_DETERMINISTIC && w->determinism == CUDNN_DETERMINISTIC;
    MD_CUDNN(cudnnSetConvolutionMathType(p->filter_conv.d, tf32 ? w->mathType : CUDNN_FMA_MATH));
    MD_CUDNN(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x.d, p->y.d, p->filter_conv.d,
                                                            filter_.d, p->filter, &p->filter_bytes));
    MD_CHECK(p->fwd_bytes <= cap && p->data_bytes <= cap && p->filter_bytes <= cap,
             "cuDNN workspace larger than the context's");
    return p;
  }

  int reserved_batch_ = 0;
  FilterDesc filter_;                                      // (O, I, K, K)
  std::map<std::pair<int, bool>, std::unique_ptr<Plan>> plans_;  // by (batch, TF32)
  Buffer<double> partials_;                                // device: bias-gradient partial sums
  Buffer<float> chunk_dw_;                                 // device, deterministic: a chunk's dW, db
};

}  // namespace

LayerPtr make_conv2d_cuda(const Conv2dConfig& config) { return std::make_unique<Conv2dCuda>(config); }

}  // namespace mnist_dist

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
