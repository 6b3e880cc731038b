// Conv2d on CPU: im2col per sample + OpenBLAS SGEMM, samples in parallel (OpenMP), the
// column buffers of the forward pass kept for the weight gradient.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "core/aligned.h"
#include "core/error.h"
#include "layers/backend_cpu.h"
#include "layers/conv2d.h"
#include "layers/im2col.h"
#include "model/init.h"

namespace mnist_dist {
namespace {

class Conv2dCpu final : public Layer {
 public:
  explicit Conv2dCpu(const Conv2dConfig& c) : cfg_(c), pad_(conv_pad(c)) {}

  std::string kind() const override { return "conv2d"; }
  std::string describe() const override {
    return "conv2d " + std::to_string(cfg_.out_channels) + "@" + std::to_string(cfg_.kernel) +
           "x" + std::to_string(cfg_.kernel) +
           (cfg_.padding == Padding::kSame ? " same" : " valid");
  }

  Shape output_shape(const Shape& in) const override {
    MD_CHECK(in.c == cfg_.in_channels, "conv2d input channels " + in.str());
    const int oh = in.h + 2 * pad_ - cfg_.kernel + 1, ow = in.w + 2 * pad_ - cfg_.kernel + 1;
    MD_CHECK(oh > 0 && ow > 0, "conv2d input too small: " + in.str());
    return Shape{in.n, cfg_.out_channels, oh, ow};
  }

  void declare(ParamArena& a) override {
    const int k = cfg_.kernel;
    w_ = a.declare(name() + "/weight", {cfg_.out_channels, cfg_.in_channels, k, k}, true);
    b_ = a.declare(name() + "/bias", {cfg_.out_channels}, true);
  }

  void init(ParamArena& a, Rng& rng) override {
    const int kk = cfg_.kernel * cfg_.kernel;
    glorot_uniform(a.param(w_), a.info(w_).count, cfg_.in_channels * kk, cfg_.out_channels * kk,
                   rng);
    std::fill_n(a.param(b_), cfg_.out_channels, 0.0f);
  }

  void reserve(const Shape& in) override {
    const Shape out = output_shape(in);
    col_rows_ = static_cast<size_t>(cfg_.in_channels) * cfg_.kernel * cfg_.kernel;
    col_cols_ = static_cast<size_t>(out.h) * out.w;
    cols_.assign(static_cast<size_t>(in.n) * col_rows_ * col_cols_, 0.0f);
    const int threads = std::max(1, omp_get_max_threads());
    reserved_threads_ = threads;
    dcol_.assign(static_cast<size_t>(threads) * col_rows_ * col_cols_, 0.0f);
    dw_partial_.assign(static_cast<size_t>(threads) * (col_rows_ * cfg_.out_channels + cfg_.out_channels), 0.0f);
    reserved_batch_ = in.n;
  }

  void forward(Context&, ParamArena& a, const Tensor& x, Tensor& y, bool) override {
    MD_CHECK(x.shape.n <= reserved_batch_, "conv2d batch larger than reserved");
    const Shape& in = x.shape;
    const int o = cfg_.out_channels;
    const float* w = a.param(w_);
    const float* b = a.param(b_);
    const size_t in_plane = in.per_sample(), out_plane = y.shape.per_sample();
#pragma omp parallel for schedule(static)
    for (int n = 0; n < in.n; ++n) {
      float* col = cols_.data() + n * col_rows_ * col_cols_;
      im2col(x.data + n * in_plane, in.c, in.h, in.w, cfg_.kernel, pad_, y.shape.h, y.shape.w, col);
      float* yn = y.data + n * out_plane;
      for (int oc = 0; oc < o; ++oc) std::fill_n(yn + oc * col_cols_, col_cols_, b[oc]);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, o, static_cast<int>(col_cols_),
                  static_cast<int>(col_rows_), 1.0f, w, static_cast<int>(col_rows_), col,
                  static_cast<int>(col_cols_), 1.0f, yn, static_cast<int>(col_cols_));
    }
  }

  void backward(Context&, ParamArena& a, const Tensor& x, const Tensor& y, const Tensor& dy,
                Tensor& dx) override {
    const Shape& in = x.shape;
    const int o = cfg_.out_channels;
    const float* w = a.param(w_);
    const size_t wcount = col_rows_ * o;
    const size_t in_plane = in.per_sample(), out_plane = y.shape.per_sample();
    const int ccols = static_cast<int>(col_cols_), crows = static_cast<int>(col_rows_);
    int used_threads = 1;
    // At most as many threads as the per-thread buffers were sized for in reserve().
#pragma omp parallel num_threads(reserved_threads_)
    {
      const int t = omp_get_thread_num();
#pragma omp single
      used_threads = omp_get_num_threads();
      float* dw_t = dw_partial_.data() + t * (wcount + o);
      float* db_t = dw_t + wcount;
      std::fill_n(dw_t, wcount + o, 0.0f);
      float* dcol = dcol_.data() + t * col_rows_ * col_cols_;
#pragma omp for schedule(static)
      for (int n = 0; n < in.n; ++n) {
        const float* dyn = dy.data + n * out_plane;
        const float* col = cols_.data() + n * col_rows_ * col_cols_;
        // dW += dy_n (O, P) · col_nᵀ (P, CKK)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, o, crows, ccols, 1.0f, dyn, ccols,
                    col, ccols, 1.0f, dw_t, crows);
        for (int oc = 0; oc < o; ++oc) {
          float s = 0.0f;
          for (int p = 0; p < ccols; ++p) s += dyn[oc * col_cols_ + p];
          db_t[oc] += s;
        }
        if (dx.data != nullptr) {
          // dcol (CKK, P) = Wᵀ (CKK, O) · dy_n (O, P), then scatter back to the image.
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, crows, ccols, o, 1.0f, w, crows,
                      dyn, ccols, 0.0f, dcol, ccols);
          col2im(dcol, in.c, in.h, in.w, cfg_.kernel, pad_, y.shape.h, y.shape.w,
                 dx.data + n * in_plane);
        }
      }
    }
    // Reduce the per-thread partial gradients in a fixed order (deterministic for a thread count).
    float* dw = a.grad(w_);
    float* db = a.grad(b_);
    std::copy_n(dw_partial_.data(), wcount, dw);
    std::copy_n(dw_partial_.data() + wcount, o, db);
    for (int t = 1; t < used_threads; ++t) {
      const float* p = dw_partial_.data() + t * (wcount + o);
      for (size_t i = 0; i < wcount; ++i) dw[i] += p[i];
      for (int i = 0; i < o; ++i) db[i] += p[wcount + i];
    }
  }

 private:
  Conv2dConfig cfg_;
  int pad_;
  int w_ = -1, b_ = -1;
  size_t col_rows_ = 0, col_cols_ = 0;
  int reserved_batch_ = 0;
  int reserved_threads_ = 1;
  AlignedVector<float> cols_, dcol_, dw_partial_;
};

}  // namespace

LayerPtr make_conv2d_cpu(const Conv2dConfig& config) { return std::make_unique<Conv2dCpu>(config); }

}  // namespace mnist_dist
