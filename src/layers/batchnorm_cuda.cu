// BatchNorm on the GPU (forward and backward of BatchNormBase) with batchnorm_cpu.cpp's
// semantics: channel sums in double, reduced over the ranks through ctx.comm (device buffer;
// NCCL) when ctx.sync_bn, Keras momentum/epsilon, unbiased running variance, (0, 1)
// statistics for an empty global slice. Own kernels:
//   channel sums  grid (parts, C): each block sums whole samples of one channel into a partial;
//                 a second kernel adds the partials in a fixed order (deterministic, no atomics);
//   statistics    one thread per channel (mean, 1/σ, running update) — stays on the device;
//   element-wise  normalisation and the input gradient through bn:: (layers/math/bn_math.h).
// Deterministic training (ctx.exact_grads set): the partial sums are per chunk of ctx.chunk
// samples (a block's order depends on the chunk alone), written to a slot table with a row per
// chunk of the global batch; the table is all-reduced (each slot has one nonzero: exact) and
// every rank adds the rows in chunk order, as batchnorm_cpu.cpp's chunk_sums; the γ/β
// gradients go per chunk into fixed point.
#include <algorithm>

#include "comm/communicator.h"
#include "core/error.h"
#include "cuda/block_reduce.cuh"
#include "cuda/buffer.h"
#include "cuda/checks.h"
#include "cuda/cuda_context.h"
#include "cuda/launch.h"
#include "layers/backend_cuda.h"
#include "layers/batchnorm.h"
#include "layers/exact_grad_cuda.h"
#include "layers/math/bn_math.h"

namespace mnist_dist {
namespace {

constexpr int kMaxParts = 64;       // partial sums per channel (blocks along the batch)
constexpr int kReduceBlock = 256;

enum class SumKind { kXX2, kDyDyXhat };  // forward: Σx, Σx²; backward: Σdy, Σdy·x̂

// partials[(part·2 + q)·C + ch] for q ∈ {0, 1}: sums over samples [part·n/parts, (part+1)·n/parts),
// or with chunk > 0 over [part·chunk, (part+1)·chunk) ∩ [0, n).
template <SumKind kKind>
static __global__ void bn_partial_sums_kernel(const float* __restrict__ x,
                                              const float* __restrict__ dy,
                                              const float* __restrict__ mean,
                                              const float* __restrict__ invstd, int n, int c,
                                              int hw, int parts, int chunk, double* __restrict__ partials) {
  __shared__ double scratch[32];
  const int part = blockIdx.x, ch = blockIdx.y;
  const int begin = chunk > 0 ? part * chunk : static_cast<int>(static_cast<long long>(part) * n / parts);
  const int end = chunk > 0 ? min(n, begin + chunk) : static_cast<int>(static_cast<long long>(part + 1) * n / parts);
  double s1 = 0.0, s2 = 0.0;
  const float m = kKind == SumKind::kDyDyXhat ? mean[ch] : 0.0f;
  const float is = kKind == SumKind::kDyDyXhat ? invstd[ch] : 0.0f;
  for (int i = begin; i < end; ++i) {
    const size_t off = (static_cast<size_t>(i) * c + ch) * hw;
    for (int j = threadIdx.x; j < hw; j += blockDim.x) {
      if (kKind == SumKind::kXX2) {
        const float v = x[off + j];
        s1 += v;
        s2 += static_cast<double>(v) * v;
      } else {
        const float g = dy[off + j];
        s1 += g;
        s2 += static_cast<double>(g) * bn::xhat(x[off + j], m, is);
      }
    }
  }
  s1 = cuda::block_sum(s1, scratch);
  s2 = cuda::block_sum(s2, scratch);
  if (threadIdx.x == 0) {
    partials[(static_cast<size_t>(part) * 2) * c + ch] = s1;
    partials[(static_cast<size_t>(part) * 2 + 1) * c + ch] = s2;
  }
}

// One warp per channel: sums[ch], sums[C + ch] from the partials (fixed order); forward also
// writes the element count to sums[2C]; backward also the local γ/β gradients.
static __global__ void bn_finish_sums_kernel(const double* __restrict__ partials, int parts, int c,
                                             double* __restrict__ sums, double count,
                                             float* __restrict__ dgamma, float* __restrict__ dbeta) {
  const int ch = blockIdx.x;
  double s1 = 0.0, s2 = 0.0;
  for (int p = threadIdx.x; p < parts; p += 32) {
    s1 += partials[(static_cast<size_t>(p) * 2) * c + ch];
    s2 += partials[(static_cast<size_t>(p) * 2 + 1) * c + ch];
  }
  s1 = cuda::warp_sum(s1);
  s2 = cuda::warp_sum(s2);
  if (threadIdx.x != 0) return;
  sums[ch] = s1;
  sums[c + ch] = s2;
  if (count >= 0.0 && ch == 0) sums[2 * c] = count;
  if (dbeta != nullptr) dbeta[ch] = static_cast<float>(s1);
  if (dgamma != nullptr) dgamma[ch] = static_cast<float>(s2);
}

// Deterministic training, per chunk p < parts of this rank (global chunk first + p): its two
// sums into slot row first + p of slots ((total chunks) × (2C + 1)), with the count
// (samples · count_per_sample) in column 2C; with qa, qb, each sum as float into fixed point
// (added to qa, qb, or written over them for p = 0 unless add). One thread per channel.
static __global__ void bn_chunk_slots_kernel(const double* __restrict__ partials, int parts, int c, int n,
                                             int chunk, int first, double count_per_sample,
                                             double* __restrict__ slots, int64_t* __restrict__ qa,
                                             int64_t* __restrict__ qb, bool add, exact::DeviceRange range) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  const int width = 2 * c + 1;
  unsigned long long sa = 0, sb = 0;
  for (int p = 0; p < parts; ++p) {
    const double a = partials[(static_cast<size_t>(p) * 2) * c + ch];
    const double b = partials[(static_cast<size_t>(p) * 2 + 1) * c + ch];
    double* row = slots + static_cast<size_t>(first + p) * width;
    row[ch] = a;
    row[c + ch] = b;
    if (ch == 0) row[2 * c] = (min(n, (p + 1) * chunk) - p * chunk) * count_per_sample;
    if (qa == nullptr) continue;
    const float fa = static_cast<float>(a), fb = static_cast<float>(b);
    if (range.flag != nullptr && !(fabsf(fa) <= range.limit && fabsf(fb) <= range.limit)) atomicOr(range.flag, 1u);
    sa += static_cast<unsigned long long>(__float2ll_rn(fa * exact::kToFixed));
    sb += static_cast<unsigned long long>(__float2ll_rn(fb * exact::kToFixed));
  }
  if (qa == nullptr) return;
  qa[ch] = static_cast<int64_t>(add ? static_cast<unsigned long long>(qa[ch]) + sa : sa);
  qb[ch] = static_cast<int64_t>(add ? static_cast<unsigned long long>(qb[ch]) + sb : sb);
}

// sums[j] = Σ_k slots[k][j] in chunk order, for j < used. One thread per column.
static __global__ void bn_slot_totals_kernel(const double* __restrict__ slots, int chunks, int width, int used,
                                             double* __restrict__ sums) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= used) return;
  double t = 0.0;
  for (int k = 0; k < chunks; ++k) t += slots[static_cast<size_t>(k) * width + j];
  sums[j] = t;
}

// Batch statistics from the (global) sums [Σx (C), Σx² (C), count], and the running update.
static __global__ void bn_batch_stats_kernel(const double* __restrict__ sums, int c, float eps,
                                             float momentum, float* __restrict__ rmean,
                                             float* __restrict__ rvar, float* __restrict__ mean,
                                             float* __restrict__ invstd, float* __restrict__ inv_m) {
  const double count = sums[2 * c];
  if (blockIdx.x == 0 && threadIdx.x == 0) *inv_m = count > 0.0 ? static_cast<float>(1.0 / count) : 0.0f;
  for (int ch = blockIdx.x * blockDim.x + threadIdx.x; ch < c; ch += gridDim.x * blockDim.x) {
    if (count == 0.0) {  // an empty slice: normalise with (0, 1), running statistics untouched
      mean[ch] = 0.0f;
      invstd[ch] = 1.0f;
      continue;
    }
    const double mu = sums[ch] / count;
    const double var = fmax(sums[c + ch] / count - mu * mu, 0.0);
    mean[ch] = static_cast<float>(mu);
    invstd[ch] = static_cast<float>(1.0 / sqrt(var + eps));
    const double unbiased = count > 1 ? var * count / (count - 1) : var;
    rmean[ch] = bn::running_update(rmean[ch], static_cast<float>(mu), momentum);
    rvar[ch] = bn::running_update(rvar[ch], static_cast<float>(unbiased), momentum);
  }
}

// Evaluation: the running statistics (1/σ in float, as the CPU).
static __global__ void bn_running_stats_kernel(const float* __restrict__ rmean,
                                               const float* __restrict__ rvar, int c, float eps,
                                               float* __restrict__ mean, float* __restrict__ invstd) {
  for (int ch = blockIdx.x * blockDim.x + threadIdx.x; ch < c; ch += gridDim.x * blockDim.x) {
    mean[ch] = rmean[ch];
    invstd[ch] = 1.0f / sqrtf(rvar[ch] + eps);
  }
}

static __global__ void bn_normalize_kernel(const float* __restrict__ x, float* __restrict__ y,
                                           const float* __restrict__ mean,
                                           const float* __restrict__ invstd,
                                           const float* __restrict__ gamma,
                                           const float* __restrict__ beta, size_t total, int c,
                                           int hw) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < total;
       i += size_t{gridDim.x} * blockDim.x) {
    const int ch = static_cast<int>(i / hw % c);
    y[i] = bn::forward(x[i], mean[ch], invstd[ch], gamma[ch], beta[ch]);
  }
}

static __global__ void bn_backward_dx_kernel(const float* __restrict__ x,
                                             const float* __restrict__ dy,
                                             float* __restrict__ dx, const float* __restrict__ mean,
                                             const float* __restrict__ invstd,
                                             const float* __restrict__ gamma,
                                             const double* __restrict__ sums,
                                             const float* __restrict__ inv_m, size_t total, int c,
                                             int hw) {
  const float im = *inv_m;
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < total;
       i += size_t{gridDim.x} * blockDim.x) {
    const int ch = static_cast<int>(i / hw % c);
    const float m = mean[ch], is = invstd[ch];
    dx[i] = bn::backward_dx(dy[i], bn::xhat(x[i], m, is), gamma[ch] * is, im,
                            static_cast<float>(sums[ch]), static_cast<float>(sums[c + ch]));
  }
}

class BatchNormCuda final : public BatchNormBase {
 public:
  explicit BatchNormCuda(const BatchNormConfig& c) : BatchNormBase(c) {}

  void reserve(const Shape& in) override {
    const size_t c = static_cast<size_t>(cfg_.channels);
    sums_ = Buffer<double>(Backend::kCuda, 2 * c + 1);
    // parts: up to kMaxParts, or one per chunk (at most one per sample) in deterministic training
    partials_ = Buffer<double>(Backend::kCuda, std::max<size_t>(kMaxParts, static_cast<size_t>(in.n)) * 2 * c);
    stats_ = Buffer<float>(Backend::kCuda, 2 * c + 1);  // [mean (C), 1/σ (C), 1/count]
  }

  void forward(Context& ctx, ParamArena& a, const Tensor& x, Tensor& y, bool training) override {
    const int n = x.shape.n, c = cfg_.channels, hw = x.shape.h * x.shape.w;
    const cudaStream_t s = ctx.cuda->stream();
    float* mean = stats_.data();
    float* invstd = mean + c;
    if (training) {
      if (ctx.exact_grads != nullptr) {
        chunk_sums<SumKind::kXX2>(ctx, x.data, nullptr, n, hw, static_cast<double>(hw), nullptr, nullptr);
      } else {
        channel_sums<SumKind::kXX2>(x.data, nullptr, n, hw, static_cast<double>(n) * hw, nullptr,
                                    nullptr, s);
        if (sync_across_ranks(ctx)) ctx.comm->allreduce_sum(sums_.data(), sums_.size());
      }
      bn_batch_stats_kernel<<<1, 256, 0, s>>>(sums_.data(), c, cfg_.epsilon, cfg_.momentum,
                                              a.param(mean_), a.param(var_), mean, invstd,
                                              invstd + c);
      MD_CUDA_LAUNCH("bn_batch_stats_kernel");
    } else {
      bn_running_stats_kernel<<<1, 256, 0, s>>>(a.param(mean_), a.param(var_), c, cfg_.epsilon,
                                                mean, invstd);
      MD_CUDA_LAUNCH("bn_running_stats_kernel");
    }
    const size_t total = x.size();
    if (total == 0) return;
    bn_normalize_kernel<<<cuda::grid_1d(total), cuda::kBlock, 0, s>>>(
        x.data, y.data, mean, invstd, a.param(gamma_), a.param(beta_), total, c, hw);
    MD_CUDA_LAUNCH("bn_normalize_kernel");
  }

  void backward(Context& ctx, ParamArena& a, const Tensor& x, const Tensor&, const Tensor& dy,
                Tensor& dx) override {
    const int n = x.shape.n, c = cfg_.channels, hw = x.shape.h * x.shape.w;
    const cudaStream_t s = ctx.cuda->stream();
    const float* mean = stats_.data();
    const float* invstd = mean + c;
    if (ctx.exact_grads != nullptr) {  // the global sums, and the γ/β gradients per chunk
      chunk_sums<SumKind::kDyDyXhat>(ctx, x.data, dy.data, n, hw, 0.0,
                                     ctx.exact_grads + (a.grad(beta_) - a.grads()),
                                     ctx.exact_grads + (a.grad(gamma_) - a.grads()));
      if (dx.data == nullptr) return;
    } else {
      // sums_ = [Σdy (C), Σdy·x̂ (C)]: the local sums are the β/γ gradients.
      channel_sums<SumKind::kDyDyXhat>(x.data, dy.data, n, hw, -1.0, a.grad(gamma_), a.grad(beta_),
                                       s);
      if (dx.data == nullptr) return;
      if (sync_across_ranks(ctx)) ctx.comm->allreduce_sum(sums_.data(), 2 * c);
    }
    const size_t total = x.size();
    if (total == 0) return;
    bn_backward_dx_kernel<<<cuda::grid_1d(total), cuda::kBlock, 0, s>>>(
        x.data, dy.data, dx.data, mean, invstd, a.param(gamma_), sums_.data(), invstd + c, total,
        c, hw);
    MD_CUDA_LAUNCH("bn_backward_dx_kernel");
  }

 private:
  // sums_[0, 2C) ← the two channel sums of kKind over this rank's n samples (and sums_[2C] ←
  // count when count >= 0; dgamma/dbeta ← the sums as floats when given).
  template <SumKind kKind>
  void channel_sums(const float* x, const float* dy, int n, int hw, double count, float* dgamma,
                    float* dbeta, cudaStream_t s) {
    const int c = cfg_.channels;
    const int parts = std::min(n, kMaxParts);
    if (parts > 0) {
      bn_partial_sums_kernel<kKind><<<dim3(parts, c), kReduceBlock, 0, s>>>(
          x, dy, stats_.data(), stats_.data() + c, n, c, hw, parts, 0, partials_.data());
      MD_CUDA_LAUNCH("bn_partial_sums_kernel");
    }
    bn_finish_sums_kernel<<<c, 32, 0, s>>>(partials_.data(), parts, c, sums_.data(), count, dgamma,
                                           dbeta);
    MD_CUDA_LAUNCH("bn_finish_sums_kernel");
  }

  // Deterministic training: sums_ = [Σa (C), Σb (C), count] over the global batch, the same bits
  // on every rank whatever the world size (see the top of the file); count_per_sample: the
  // count's share of a sample (0 leaves sums_[2C] alone). qa, qb (when set): Σa, Σb of each of
  // this rank's chunks, as float, into fixed point (after zeros unless ctx.exact_add).
  template <SumKind kKind>
  void chunk_sums(Context& ctx, const float* x, const float* dy, int n, int hw, double count_per_sample,
                  int64_t* qa, int64_t* qb) {
    const int c = cfg_.channels, m = ctx.chunk, width = 2 * c + 1;
    const cudaStream_t s = ctx.cuda->stream();
    const size_t table = static_cast<size_t>(ctx.total_chunks) * width;
    if (slots_.size() < table) slots_ = Buffer<double>(Backend::kCuda, table);
    MD_CUDA(cudaMemsetAsync(slots_.data(), 0, table * sizeof(double), s));
    const int parts = (n + m - 1) / m;
    MD_CHECK(ctx.first_chunk + parts <= ctx.total_chunks, "batchnorm: chunk beyond the global batch");
    MD_CHECK(static_cast<size_t>(parts) * 2 * c <= partials_.size(), "batchnorm: more chunks than reserved");
    if (parts > 0) {
      bn_partial_sums_kernel<kKind><<<dim3(parts, c), kReduceBlock, 0, s>>>(
          x, dy, stats_.data(), stats_.data() + c, n, c, hw, parts, m, partials_.data());
      MD_CUDA_LAUNCH("bn_partial_sums_kernel");
    }
    if (parts > 0 || (qa != nullptr && !ctx.exact_add)) {  // (no chunks: zero gradient sums)
      bn_chunk_slots_kernel<<<static_cast<unsigned>(cuda::ceil_div(static_cast<size_t>(c), 128)), 128, 0, s>>>(
          partials_.data(), parts, c, n, m, ctx.first_chunk, count_per_sample, slots_.data(), qa, qb,
          ctx.exact_add, exact::device_range(ctx));
      MD_CUDA_LAUNCH("bn_chunk_slots_kernel");
    }
    if (ctx.comm != nullptr && ctx.comm->size() > 1) ctx.comm->allreduce_sum(slots_.data(), table);
    const int used = count_per_sample > 0.0 ? width : 2 * c;
    bn_slot_totals_kernel<<<static_cast<unsigned>(cuda::ceil_div(static_cast<size_t>(used), 128)), 128, 0, s>>>(
        slots_.data(), ctx.total_chunks, width, used, sums_.data());
    MD_CUDA_LAUNCH("bn_slot_totals_kernel");
  }

  Buffer<double> sums_, partials_;  // device
  Buffer<double> slots_;            // device, deterministic: chunk_sums' table
  Buffer<float> stats_;             // device: batch mean, 1/σ, 1/count of the last forward
};

}  // namespace

LayerPtr make_batchnorm_cuda(const BatchNormConfig& config) {
  return std::make_unique<BatchNormCuda>(config);
}

}  // namespace mnist_dist
