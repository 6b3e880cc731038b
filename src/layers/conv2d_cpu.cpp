// Conv2d on CPU (forward and backward of Conv2dBase). Samples are split over the ctx.threads
// OpenMP threads; each thread runs one of two paths:
//  - direct AVX-512 kernels (conv2d_direct.h) when use_avx512(ctx) and the shape allow: forward from a
//    zero-padded copy of each sample, input gradient as the 'full' convolution of dL/dy with the
//    flipped kernel, weight gradient over chunks of samples kept in L2;
//  - otherwise im2col + OpenBLAS SGEMM per sample (single-threaded inside the parallel region).
// Per-thread weight-gradient partials are summed in thread order (deterministic for a thread
// count); deterministic training (ctx.exact_grads) sums per chunk in fixed point instead
// (backward_exact). Scratch is per thread, allocated on the first pass (again only if more threads appear).
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "core/aligned.h"
#include "core/error.h"
#include "layers/backend_cpu.h"
#include "layers/conv2d.h"
#include "layers/conv2d_direct.h"
#include "layers/cpu_context.h"
#include "layers/exact_grad.h"
#include "layers/im2col.h"

namespace mnist_dist {
namespace {

constexpr int kChunk = 8;  // samples per weight-gradient chunk (their padded inputs stay in L2)

// Samples [begin, end) of thread t among `threads` (contiguous blocks).
inline void thread_range(int n, int t, int threads, int& begin, int& end) {
  begin = static_cast<int>(static_cast<long>(n) * t / threads);
  end = static_cast<int>(static_cast<long>(n) * (t + 1) / threads);
}

class Conv2dCpu final : public Conv2dBase {
 public:
  explicit Conv2dCpu(const Conv2dConfig& c) : Conv2dBase(c) {}

  void reserve(const Shape& in) override {
    output_shape(in);  // validates
    g_ = conv_direct::make_geom(in.c, in.h, in.w, cfg_.out_channels, cfg_.kernel, pad_);
    gb_ = conv_direct::backward_data_geom(g_);
    direct_shape_ = conv_direct::supported(g_) && conv_direct::supported(gb_);
    col_rows_ = static_cast<size_t>(in.c) * cfg_.kernel * cfg_.kernel;
    col_cols_ = static_cast<size_t>(g_.oh) * g_.ow;
    wcount_ = col_rows_ * cfg_.out_channels;
    partial_stride_ = (wcount_ + cfg_.out_channels + 15) / 16 * 16;
    wt_.assign(wcount_, 0.0f);
    wtb_.assign(wcount_, 0.0f);
    reserved_batch_ = in.n;
  }

  void forward(Context& ctx, ParamArena& a, const Tensor& x, Tensor& y, bool) override {
    MD_CHECK(x.shape.n <= reserved_batch_, "conv2d batch larger than reserved");
    const int threads = team_size(ctx);
    const bool avx = use_avx512(ctx), direct = direct_shape_ && avx;
    ensure_scratch(threads, direct);
    const int n = x.shape.n;
    const float* w = a.param(w_);
    const float* b = a.param(b_);
    const size_t in_plane = x.shape.per_sample(), out_plane = y.shape.per_sample();
    if (direct) conv_direct::pack_forward(g_, w, wt_.data());
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num();
#pragma omp for schedule(static)
      for (int i = 0; i < n; ++i) {
        if (direct) {
          float* xp = xpad_.data() + static_cast<size_t>(t) * xpad_thread_;
          conv_direct::pad_input(g_, x.data + i * in_plane, xp, avx);
          conv_direct::forward(g_, xp, wt_.data(), b, y.data + i * out_plane);
        } else {
          forward_gemm(x.data + i * in_plane, w, b, y.data + i * out_plane, t);
        }
      }
    }
  }

  void backward(Context& ctx, ParamArena& a, const Tensor& x, const Tensor&, const Tensor& dy,
                Tensor& dx) override {
    if (ctx.exact_grads != nullptr) return backward_exact(ctx, a, x, dy, dx);
    const int team = team_size(ctx);
    const bool avx = use_avx512(ctx), direct = direct_shape_ && avx;
    ensure_scratch(team, direct);
    const int n = x.shape.n, o = cfg_.out_channels;
    const float* w = a.param(w_);
    if (direct && dx.data != nullptr) conv_direct::pack_backward_data(g_, w, wtb_.data());
    int used_threads = 1;
#pragma omp parallel num_threads(team)
    {
      const int t = omp_get_thread_num(), threads = omp_get_num_threads();
#pragma omp single
      used_threads = threads;
      float* dw_t = dw_partial_.data() + static_cast<size_t>(t) * partial_stride_;
      float* db_t = dw_t + wcount_;
      std::fill_n(dw_t, wcount_ + o, 0.0f);
      int begin = 0, end = 0;
      thread_range(n, t, threads, begin, end);
      backward_samples(direct, avx, x, dy, dx, w, begin, end, dw_t, db_t, t);
    }
    // Reduce the per-thread partial gradients in a fixed order (deterministic for a thread count).
    float* dw = a.grad(w_);
    float* db = a.grad(b_);
    std::copy_n(dw_partial_.data(), wcount_, dw);
    std::copy_n(dw_partial_.data() + wcount_, o, db);
    for (int t = 1; t < used_threads; ++t) {
      const float* p = dw_partial_.data() + static_cast<size_t>(t) * partial_stride_;
      for (size_t i = 0; i < wcount_; ++i) dw[i] += p[i];
      for (int i = 0; i < o; ++i) db[i] += p[wcount_ + i];
    }
  }

 private:
  // Deterministic training (ctx.exact_grads): the threads take whole chunks of ctx.chunk
  // samples; each chunk's gradient is summed from zero in the order of the other path (its
  // samples, kChunk at a time), rounded to fixed point into the thread's sums, and the
  // threads' sums are added (exactly, so in any order) into ctx.exact_grads (after zeros unless
  // ctx.exact_add).
  void backward_exact(Context& ctx, ParamArena& a, const Tensor& x, const Tensor& dy, Tensor& dx) {
    const int team = team_size(ctx);
    const bool avx = use_avx512(ctx), direct = direct_shape_ && avx;
    ensure_scratch(team, direct);
    const int n = x.shape.n, o = cfg_.out_channels, m = ctx.chunk;
    const float* w = a.param(w_);
    if (direct && dx.data != nullptr) conv_direct::pack_backward_data(g_, w, wtb_.data());
    if (exact_partial_.size() < static_cast<size_t>(team) * partial_stride_)
      exact_partial_.assign(static_cast<size_t>(team) * partial_stride_, 0);
    const int chunks = (n + m - 1) / m;
    int used_threads = 1;
    float max_abs = 0.0f;
    bool nan = false;  // (a max reduction may drop a NaN)
#pragma omp parallel num_threads(team) reduction(max : max_abs) reduction(|| : nan)
    {
      const int t = omp_get_thread_num();
#pragma omp single
      used_threads = omp_get_num_threads();
      float* dw_t = dw_partial_.data() + static_cast<size_t>(t) * partial_stride_;
      float* db_t = dw_t + wcount_;
      int64_t* q_t = exact_partial_.data() + static_cast<size_t>(t) * partial_stride_;
      std::fill_n(q_t, wcount_ + o, 0);
#pragma omp for schedule(static)
      for (int c = 0; c < chunks; ++c) {
        std::fill_n(dw_t, wcount_ + o, 0.0f);
        backward_samples(direct, avx, x, dy, dx, w, c * m, std::min(n, c * m + m), dw_t, db_t, t);
        const float m_c = exact::fold(dw_t, wcount_ + o, q_t);
        nan = nan || m_c != m_c;
        max_abs = std::max(max_abs, m_c);
      }
    }
    exact::check_range(nan ? std::numeric_limits<float>::quiet_NaN() : max_abs, ctx.total_chunks, "a convolution");
    int64_t* qw = ctx.exact_grads + (a.grad(w_) - a.grads());
    int64_t* qb = ctx.exact_grads + (a.grad(b_) - a.grads());
    if (!ctx.exact_add) std::fill_n(qw, wcount_, 0), std::fill_n(qb, o, 0);
    for (int t = 0; t < used_threads; ++t) {
      const int64_t* q = exact_partial_.data() + static_cast<size_t>(t) * partial_stride_;
      for (size_t i = 0; i < wcount_; ++i) qw[i] += q[i];
      for (int i = 0; i < o; ++i) qb[i] += q[wcount_ + i];
    }
  }

  // Samples [begin, end) on thread t: dx per sample (when dx is wanted) and their weight and bias
  // gradients added to (dw_t, db_t): the direct kernels kChunk samples at a time (their padded
  // inputs stay in L2), or im2col + GEMM one sample at a time.
  void backward_samples(bool direct, bool avx, const Tensor& x, const Tensor& dy, Tensor& dx, const float* w,
                        int begin, int end, float* dw_t, float* db_t, int t) {
    const size_t in_plane = x.shape.per_sample(), out_plane = dy.shape.per_sample();
    const bool want_dx = dx.data != nullptr;
    if (!direct) {
      for (int i = begin; i < end; ++i)
        backward_gemm(x.data + i * in_plane, dy.data + i * out_plane, w, want_dx ? dx.data + i * in_plane : nullptr,
                      dw_t, db_t, t);
      return;
    }
    float* xp = xpad_.data() + static_cast<size_t>(t) * xpad_thread_;
    float* dyp = dypad_.data() + static_cast<size_t>(t) * dypad_thread_;
    const size_t stride = g_.padded_floats();
    for (int c0 = begin; c0 < end; c0 += kChunk) {
      const int cnt = std::min(kChunk, end - c0);
      for (int i = 0; i < cnt; ++i) {
        conv_direct::pad_input(g_, x.data + (c0 + i) * in_plane, xp + i * stride, avx);
        if (want_dx) {
          conv_direct::pad_input(gb_, dy.data + (c0 + i) * out_plane, dyp, avx);
          conv_direct::forward(gb_, dyp, wtb_.data(), nullptr, dx.data + (c0 + i) * in_plane);
        }
      }
      conv_direct::weight_grad(g_, dy.data + c0 * out_plane, xp, stride, cnt, dw_t, db_t);
    }
  }

  // Per-thread scratch for `threads` threads of the chosen path; allocated on the first pass and
  // again only when more threads appear (e.g. a model built before the thread count was raised).
  void ensure_scratch(int threads, bool direct) {
    const size_t t = static_cast<size_t>(threads);
    if (dw_partial_.size() < t * partial_stride_) dw_partial_.assign(t * partial_stride_, 0.0f);
    if (direct) {
      // Zeroed once: the borders of padded inputs are never written.
      xpad_thread_ = kChunk * g_.padded_floats();
      dypad_thread_ = gb_.padded_floats();
      if (xpad_.size() < t * xpad_thread_) xpad_.assign(t * xpad_thread_, 0.0f);
      if (dypad_.size() < t * dypad_thread_) dypad_.assign(t * dypad_thread_, 0.0f);
    } else if (col_.size() < t * col_rows_ * col_cols_) {
      col_.assign(t * col_rows_ * col_cols_, 0.0f);
    }
  }

  // One sample through im2col + SGEMM: y (O, P) = W (O, CKK) · col (CKK, P) + b.
  void forward_gemm(const float* x, const float* w, const float* b, float* y, int t) {
    const int o = cfg_.out_channels;
    float* col = col_.data() + static_cast<size_t>(t) * col_rows_ * col_cols_;
    im2col(x, g_.c, g_.h, g_.w, cfg_.kernel, pad_, g_.oh, g_.ow, col);
    for (int oc = 0; oc < o; ++oc) std::fill_n(y + oc * col_cols_, col_cols_, b[oc]);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, o, static_cast<int>(col_cols_),
                static_cast<int>(col_rows_), 1.0f, w, static_cast<int>(col_rows_), col,
                static_cast<int>(col_cols_), 1.0f, y, static_cast<int>(col_cols_));
  }

  // One sample's gradients: dW += dy (O, P) · colᵀ, db += Σ dy, dx = col2im(Wᵀ · dy).
  void backward_gemm(const float* x, const float* dyn, const float* w, float* dxn, float* dw_t,
                     float* db_t, int t) {
    const int o = cfg_.out_channels;
    const int ccols = static_cast<int>(col_cols_), crows = static_cast<int>(col_rows_);
    float* col = col_.data() + static_cast<size_t>(t) * col_rows_ * col_cols_;
    im2col(x, g_.c, g_.h, g_.w, cfg_.kernel, pad_, g_.oh, g_.ow, col);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, o, crows, ccols, 1.0f, dyn, ccols, col,
                ccols, 1.0f, dw_t, crows);
    for (int oc = 0; oc < o; ++oc) {
      float s = 0.0f;
      for (int p = 0; p < ccols; ++p) s += dyn[oc * col_cols_ + p];
      db_t[oc] += s;
    }
    if (dxn != nullptr) {
      // col (CKK, P) = Wᵀ (CKK, O) · dy_n (O, P), then scatter back to the image.
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, crows, ccols, o, 1.0f, w, crows, dyn,
                  ccols, 0.0f, col, ccols);
      col2im(col, g_.c, g_.h, g_.w, cfg_.kernel, pad_, g_.oh, g_.ow, dxn);
    }
  }

  conv_direct::Geom g_, gb_;  // this convolution; the 'full' one of the input gradient
  bool direct_shape_ = false;  // the direct kernels take this shape (they also need AVX-512)
  size_t col_rows_ = 0, col_cols_ = 0, wcount_ = 0, partial_stride_ = 0;
  size_t xpad_thread_ = 0, dypad_thread_ = 0;
  int reserved_batch_ = 0;
  AlignedVector<float> wt_, wtb_;          // kernel packed for forward / input gradient
  AlignedVector<float> xpad_, dypad_;      // per thread: kChunk padded inputs; one padded dy
  AlignedVector<float> col_;               // per thread: one im2col matrix (GEMM path)
  AlignedVector<float> dw_partial_;        // per thread: dW (O·CKK) then db (O)
  std::vector<int64_t> exact_partial_;     // per thread: the same in fixed point (deterministic)
};

}  // namespace

LayerPtr make_conv2d_cpu(const Conv2dConfig& config) { return std::make_unique<Conv2dCpu>(config); }

}  // namespace mnist_dist
