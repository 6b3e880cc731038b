// BatchNorm on CPU (forward and backward of BatchNormBase, and the fused BatchNorm → ReLU →
// max-pool block): double-precision channel sums, optional cross-rank reduction (SyncBN).
// Every pass runs per (sample, channel) plane in memory order, split over the ctx.threads by
// samples as the convolutions are: each thread reads the planes it wrote (by channel, half of
// every channel's planes came from the other thread, whose next writes to them then waited on
// this thread's copies: ~1 ms more per seed step on 2 threads when the VM's vCPUs sit on
// different CCDs). A channel's sum adds its planes' sums in sample order, independent of the thread
// count. Deterministic training sums per chunk of the global batch instead (chunk_sums). Loops
// are in cpu_simd.h.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "comm/communicator.h"
#include "core/aligned.h"
#include "core/error.h"
#include "layers/backend_cpu.h"
#include "layers/batchnorm.h"
#include "layers/cpu_context.h"
#include "layers/cpu_simd.h"
#include "layers/exact_grad.h"
#include "layers/fusion.h"
#include "layers/math/bn_math.h"

namespace mnist_dist {
namespace {

class BatchNormCpu final : public BatchNormBase, public FusedReluPool {
 public:
  explicit BatchNormCpu(const BatchNormConfig& c) : BatchNormBase(c) {}
  FusedReluPool* fused_relu_pool() override { return this; }

  void reserve(const Shape& in) override {
    sums_.assign(2 * cfg_.channels + 1, 0.0);
    plane_sums_.assign(2 * static_cast<size_t>(std::max(in.n, 1)) * cfg_.channels, 0.0);
    batch_mean_.assign(cfg_.channels, 0.0f);
    batch_invstd_.assign(cfg_.channels, 0.0f);
    plane_ = static_cast<size_t>(in.h) * in.w;
  }

  void forward(Context& ctx, ParamArena& a, const Tensor& x, Tensor& y, bool training) override {
    const int n = x.shape.n, c = cfg_.channels;
    const size_t hw = static_cast<size_t>(x.shape.h) * x.shape.w;
    const float* gamma = a.param(gamma_);
    const float* beta = a.param(beta_);
    statistics(ctx, a, x, training);
    const bool avx = use_avx512(ctx);
#pragma omp parallel for collapse(2) schedule(static) num_threads(team_size(ctx))
    for (int i = 0; i < n; ++i)
      for (int ch = 0; ch < c; ++ch) {
        const size_t off = (static_cast<size_t>(i) * c + ch) * hw;
        cpu_simd::bn_normalize(avx, x.data + off, hw, batch_mean_[ch], batch_invstd_[ch], gamma[ch],
                               beta[ch], y.data + off);
      }
  }

  void forward_relu_pool(Context& ctx, ParamArena& a, const Tensor& x, Tensor& y, uint8_t* arg,
                         bool training) override {
    const int n = x.shape.n, c = cfg_.channels, h = x.shape.h, w = x.shape.w;
    const size_t hw = static_cast<size_t>(h) * w, ohw = static_cast<size_t>(h / 2) * (w / 2);
    MD_CHECK(hw <= plane_ && y.shape.h == h / 2 && y.shape.w == w / 2, "fused batchnorm block " + x.shape.str());
    const float* gamma = a.param(gamma_);
    const float* beta = a.param(beta_);
    statistics(ctx, a, x, training);
    const int threads = team_size(ctx);
    const bool avx = use_avx512(ctx);
    ensure_scratch(threads);
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
    for (int i = 0; i < n; ++i)
      for (int ch = 0; ch < c; ++ch) {
        const size_t off = (static_cast<size_t>(i) * c + ch) * hw;
        const size_t poff = (static_cast<size_t>(i) * c + ch) * ohw;
        float* s = scratch_.data() + static_cast<size_t>(omp_get_thread_num()) * scratch_stride_;
        cpu_simd::bn_normalize(avx, x.data + off, hw, batch_mean_[ch], batch_invstd_[ch], gamma[ch], beta[ch], s);
        cpu_simd::relu_forward(avx, s, hw, s);
        cpu_simd::maxpool2_forward(avx, s, h, w, y.data + poff, arg + poff);
      }
  }

  void backward_relu_pool(Context& ctx, ParamArena& a, const Tensor& x, const Tensor& y_pool,
                          const uint8_t* arg, const Tensor& dy_pool, Tensor& dx) override {
    const int h = x.shape.h, w = x.shape.w;
    const size_t ohw = static_cast<size_t>(h / 2) * (w / 2);
    const bool avx = use_avx512(ctx);
    ensure_scratch(team_size(ctx));
    // dL/d(BN output) of plane (i, ch), built in the thread's scratch each time a pass needs it
    // (the sums, then dx): the ReLU's mask at the pool's winners is y_pool > 0 (the winner's
    // rectified value is the pooled one), so mask dy_pool, then route it. It never reaches
    // memory: per element the backward reads x twice and writes dx, nothing else full-size.
    backward_impl(ctx, a, x, dx, [&](size_t, size_t plane_index) -> const float* {
      const size_t poff = plane_index * ohw;
      float* d = scratch_.data() + static_cast<size_t>(omp_get_thread_num()) * scratch_stride_;
      float* m = d + plane_stride();
      cpu_simd::relu_backward(avx, y_pool.data + poff, dy_pool.data + poff, ohw, m);
      cpu_simd::maxpool2_backward(avx, m, arg + poff, h, w, d);
      return d;
    });
  }

  void backward(Context& ctx, ParamArena& a, const Tensor& x, const Tensor&, const Tensor& dy,
                Tensor& dx) override {
    backward_impl(ctx, a, x, dx, [&](size_t off, size_t) -> const float* { return dy.data + off; });
  }

 private:
  // Batch statistics (training; reduced over the ranks with SyncBN, running statistics
  // updated) or the running ones (evaluation) into batch_mean_ / batch_invstd_.
  void statistics(Context& ctx, ParamArena& a, const Tensor& x, bool training) {
    const int n = x.shape.n, c = cfg_.channels;
    const size_t hw = static_cast<size_t>(x.shape.h) * x.shape.w;
    float* rmean = a.param(mean_);
    float* rvar = a.param(var_);
    if (training) {
      // sums_ = [Σx (C), Σx² (C), count], summed over the ranks with SyncBN
      const bool avx = use_avx512(ctx);
      channel_sums(team_size(ctx), n, [&](int i, int ch, double& s1, double& s2) {
        cpu_simd::sum_sumsq(avx, x.data + (static_cast<size_t>(i) * c + ch) * hw, hw, s1, s2);
      });
      sums_[2 * c] = static_cast<double>(n) * hw;
      if (ctx.exact_grads != nullptr) {
        chunk_sums(ctx, n, static_cast<double>(hw), nullptr, nullptr);
      } else if (sync_across_ranks(ctx)) {
        ctx.comm->allreduce_sum(sums_.data(), sums_.size());
      }
      count_ = sums_[2 * c];
      for (int ch = 0; ch < c; ++ch) set_statistics(ch, count_, sums_[ch], sums_[c + ch], rmean, rvar);
    } else {
      for (int ch = 0; ch < c; ++ch) {
        batch_mean_[ch] = rmean[ch];
        batch_invstd_[ch] = 1.0f / std::sqrt(rvar[ch] + cfg_.epsilon);
      }
    }
  }

  // The backward pass; dy_plane(offset, plane index) returns dL/dy of plane (i, ch) (a pointer
  // into dy, or into the calling thread's scratch for the fused block, valid until its next call).
  template <typename DyPlane>
  void backward_impl(Context& ctx, ParamArena& a, const Tensor& x, Tensor& dx, DyPlane&& dy_plane) {
    const int n = x.shape.n, c = cfg_.channels;
    const size_t hw = static_cast<size_t>(x.shape.h) * x.shape.w;
    const float* gamma = a.param(gamma_);
    float* dgamma = a.grad(gamma_);
    float* dbeta = a.grad(beta_);
    const float inv_m = count_ > 0.0 ? static_cast<float>(1.0 / count_) : 0.0f;
    const int threads = team_size(ctx);
    const bool avx = use_avx512(ctx);
    // sums_ = [Σdy (C), Σdy·x̂ (C)]: local sums are the γ/β gradients.
    channel_sums(threads, n, [&](int i, int ch, double& sdy, double& sdyx) {
      const size_t off = (static_cast<size_t>(i) * c + ch) * hw;
      cpu_simd::sum_dy_dyxhat(avx, dy_plane(off, static_cast<size_t>(i) * c + ch), x.data + off, hw,
                              batch_mean_[ch], batch_invstd_[ch], sdy, sdyx);
    });
    if (ctx.exact_grads != nullptr) {  // deterministic: γ/β per chunk, then the exact global sums
      chunk_sums(ctx, n, 0.0, ctx.exact_grads + (dbeta - a.grads()), ctx.exact_grads + (dgamma - a.grads()));
    } else {
      for (int ch = 0; ch < c; ++ch) {
        dbeta[ch] = static_cast<float>(sums_[ch]);
        dgamma[ch] = static_cast<float>(sums_[c + ch]);
      }
      if (dx.data != nullptr && sync_across_ranks(ctx)) ctx.comm->allreduce_sum(sums_.data(), 2 * c);
    }
    if (dx.data == nullptr) return;
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
    for (int i = 0; i < n; ++i)
      for (int ch = 0; ch < c; ++ch) {
        const size_t off = (static_cast<size_t>(i) * c + ch) * hw;
        plane_dx(avx, off, ch, hw, gamma[ch], inv_m, x, dy_plane(off, static_cast<size_t>(i) * c + ch), dx);
      }
  }

  // sums_[ch] = Σ_i a(i, ch) and sums_[C + ch] = Σ_i b(i, ch) over the n samples in order,
  // where plane(i, ch, a, b) adds plane (i, ch)'s two sums to a and b (the cpu_simd kernels add
  // a plane's total to their accumulators). The planes run in parallel on `threads` threads,
  // the additions over i serially: the same additions in the same order as one loop over i per
  // channel.
  template <typename PlaneSums>
  void channel_sums(int threads, int n, PlaneSums&& plane) {
    const int c = cfg_.channels;
    if (plane_sums_.size() < 2 * static_cast<size_t>(n) * c) plane_sums_.assign(2 * static_cast<size_t>(n) * c, 0.0);
    double* ps = plane_sums_.data();
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
    for (int i = 0; i < n; ++i)
      for (int ch = 0; ch < c; ++ch) {
        double a = 0.0, b = 0.0;
        plane(i, ch, a, b);
        ps[2 * (static_cast<size_t>(i) * c + ch)] = a;
        ps[2 * (static_cast<size_t>(i) * c + ch) + 1] = b;
      }
    for (int ch = 0; ch < c; ++ch) {
      double a = 0.0, b = 0.0;
      for (int i = 0; i < n; ++i) {
        a += ps[2 * (static_cast<size_t>(i) * c + ch)];
        b += ps[2 * (static_cast<size_t>(i) * c + ch) + 1];
      }
      sums_[ch] = a;
      sums_[c + ch] = b;
    }
  }

  // Deterministic training: sums_ = [Σa (C), Σb (C), count] over the global batch from the
  // planes' sums that channel_sums left in plane_sums_, the same bits on every rank whatever the
  // world size or thread count: each of this rank's chunks (ctx.chunk samples) sums its planes in
  // sample order into its own slot of a table with a slot per chunk of the global batch; the
  // table is all-reduced (one rank writes each slot, the others add zeros: exact); every rank
  // then adds the slots in chunk order. count_per_sample: the count's share of a sample (the
  // statistics' elements per channel; 0 leaves sums_[2C] alone). qa, qb (when set): the gradients
  // Σa, Σb of each chunk, as float, in fixed point (layers/exact_grad.h), summed into qa, qb
  // (after zeros unless ctx.exact_add).
  void chunk_sums(Context& ctx, int n, double count_per_sample, int64_t* qa, int64_t* qb) {
    const int c = cfg_.channels, m = ctx.chunk, width = 2 * c + 1;
    slots_.assign(static_cast<size_t>(ctx.total_chunks) * width, 0.0);
    const double* ps = plane_sums_.data();
    float max_abs = 0.0f;
    bool nan = false;
    if (qa != nullptr && !ctx.exact_add) std::fill_n(qa, c, 0), std::fill_n(qb, c, 0);
    for (int s0 = 0, k = ctx.first_chunk; s0 < n; s0 += m, ++k) {
      MD_CHECK(k < ctx.total_chunks, "batchnorm: chunk beyond the global batch");
      double* slot = slots_.data() + static_cast<size_t>(k) * width;
      const int s1 = std::min(n, s0 + m);
      for (int ch = 0; ch < c; ++ch) {
        double a = 0.0, b = 0.0;
        for (int i = s0; i < s1; ++i) {
          a += ps[2 * (static_cast<size_t>(i) * c + ch)];
          b += ps[2 * (static_cast<size_t>(i) * c + ch) + 1];
        }
        slot[ch] = a;
        slot[c + ch] = b;
        if (qa != nullptr) {
          const float fa = static_cast<float>(a), fb = static_cast<float>(b);
          qa[ch] += exact::to_fixed(fa);
          qb[ch] += exact::to_fixed(fb);
          max_abs = std::max({max_abs, std::fabs(fa), std::fabs(fb)});
          nan = nan || fa != fa || fb != fb;
        }
      }
      slot[2 * c] = (s1 - s0) * count_per_sample;
    }
    if (qa != nullptr)
      exact::check_range(nan ? std::numeric_limits<float>::quiet_NaN() : max_abs, ctx.total_chunks, "a batch normalisation");
    if (ctx.comm != nullptr && ctx.comm->size() > 1) ctx.comm->allreduce_sum(slots_.data(), slots_.size());
    const int used = count_per_sample > 0.0 ? width : 2 * c;
    for (int j = 0; j < used; ++j) {
      double total = 0.0;
      for (int k = 0; k < ctx.total_chunks; ++k) total += slots_[static_cast<size_t>(k) * width + j];
      sums_[j] = total;
    }
  }

  // Per thread: a full plane, then (backward of the fused block) a pooled plane.
  size_t plane_stride() const { return (plane_ + 15) / 16 * 16; }
  void ensure_scratch(int threads) {
    scratch_stride_ = plane_stride() + (plane_ / 4 + 15) / 16 * 16;
    if (scratch_.size() < static_cast<size_t>(threads) * scratch_stride_)
      scratch_.assign(static_cast<size_t>(threads) * scratch_stride_, 0.0f);
  }

  // Batch mean / inverse std of channel ch from its sums over `count` elements, and the
  // running statistics' update. An empty slice (possible on some ranks in the last partial
  // batch with --bn local) has no statistics: (0, 1), running statistics left alone.
  void set_statistics(int ch, double count, double s1, double s2, float* rmean, float* rvar) {
    if (count == 0.0) {
      batch_mean_[ch] = 0.0f;
      batch_invstd_[ch] = 1.0f;
      return;
    }
    const double mean = s1 / count;
    const double var = std::max(s2 / count - mean * mean, 0.0);
    batch_mean_[ch] = static_cast<float>(mean);
    batch_invstd_[ch] = static_cast<float>(1.0 / std::sqrt(var + cfg_.epsilon));
    const double unbiased = count > 1 ? var * count / (count - 1) : var;
    rmean[ch] = bn::running_update(rmean[ch], static_cast<float>(mean), cfg_.momentum);
    rvar[ch] = bn::running_update(rvar[ch], static_cast<float>(unbiased), cfg_.momentum);
  }

  // dL/dx of plane (i, ch) from the channel sums in sums_.
  void plane_dx(bool avx, size_t off, int ch, size_t hw, float gamma, float inv_m, const Tensor& x,
                const float* dy, Tensor& dx) const {
    const int c = cfg_.channels;
    const float m = batch_mean_[ch], is = batch_invstd_[ch];
    const float sdy = static_cast<float>(sums_[ch]), sdyx = static_cast<float>(sums_[c + ch]);
    cpu_simd::bn_backward_dx(avx, dy, x.data + off, hw, m, is, gamma * is, inv_m, sdy, sdyx, dx.data + off);
  }

  std::vector<double> sums_;
  std::vector<double> plane_sums_;  // the per-plane sums of channel_sums ([sample][channel][2])
  std::vector<double> slots_;       // chunk_sums' table: per chunk of the global batch, 2C + 1
  std::vector<float> batch_mean_, batch_invstd_;
  double count_ = 1.0;
  size_t plane_ = 0, scratch_stride_ = 0;
  AlignedVector<float> scratch_;  // per thread: a plane and a pooled plane (fused block)
};

}  // namespace

LayerPtr make_batchnorm_cpu(const BatchNormConfig& config) {
  return std::make_unique<BatchNormCpu>(config);
}

}  // namespace mnist_dist
