// Naive double-precision reference layers (see reference.h): straightforward loops only.
#include "reference.h"

#include <cmath>

namespace mnist_dist::ref {
namespace {
size_t idx(const Shape& s, int n, int c, int h, int w) {
  return ((static_cast<size_t>(n) * s.c + c) * s.h + h) * s.w + w;
}
}  // namespace

// ---- conv2d ----------------------------------------------------------------------------------

Shape conv2d_out_shape(const Shape& x, int out_channels, int k, int pad) {
  return Shape{x.n, out_channels, x.h + 2 * pad - k + 1, x.w + 2 * pad - k + 1};
}

Vec conv2d_forward(const Vec& x, const Shape& xs, const Vec& w, const Vec& b, int out_channels,
                   int k, int pad) {
  const Shape ys = conv2d_out_shape(xs, out_channels, k, pad);
  Vec y(ys.size(), 0.0);
  for (int n = 0; n < xs.n; ++n)
    for (int o = 0; o < out_channels; ++o)
      for (int oy = 0; oy < ys.h; ++oy)
        for (int ox = 0; ox < ys.w; ++ox) {
          double s = b[o];
          for (int c = 0; c < xs.c; ++c)
            for (int ky = 0; ky < k; ++ky)
              for (int kx = 0; kx < k; ++kx) {
                const int iy = oy + ky - pad, ix = ox + kx - pad;
                if (iy < 0 || iy >= xs.h || ix < 0 || ix >= xs.w) continue;
                s += w[((static_cast<size_t>(o) * xs.c + c) * k + ky) * k + kx] *
                     x[idx(xs, n, c, iy, ix)];
              }
          y[idx(ys, n, o, oy, ox)] = s;
        }
  return y;
}

ConvGrads conv2d_backward(const Vec& x, const Shape& xs, const Vec& w, const Vec& dy,
                          int out_channels, int k, int pad) {
  const Shape ys = conv2d_out_shape(xs, out_channels, k, pad);
  ConvGrads g{Vec(x.size(), 0.0), Vec(w.size(), 0.0), Vec(out_channels, 0.0)};
  for (int n = 0; n < xs.n; ++n)
    for (int o = 0; o < out_channels; ++o)
      for (int oy = 0; oy < ys.h; ++oy)
        for (int ox = 0; ox < ys.w; ++ox) {
          const double d = dy[idx(ys, n, o, oy, ox)];
          g.db[o] += d;
          for (int c = 0; c < xs.c; ++c)
            for (int ky = 0; ky < k; ++ky)
              for (int kx = 0; kx < k; ++kx) {
                const int iy = oy + ky - pad, ix = ox + kx - pad;
                if (iy < 0 || iy >= xs.h || ix < 0 || ix >= xs.w) continue;
                const size_t wi = ((static_cast<size_t>(o) * xs.c + c) * k + ky) * k + kx;
                g.dw[wi] += d * x[idx(xs, n, c, iy, ix)];
                g.dx[idx(xs, n, c, iy, ix)] += d * w[wi];
              }
        }
  return g;
}

// ---- batchnorm -------------------------------------------------------------------------------

BnForward batchnorm_train_forward(const Vec& x, const Shape& xs, const Vec& gamma,
                                  const Vec& beta, double eps) {
  BnForward f{Vec(x.size()), Vec(xs.c, 0.0), Vec(xs.c, 0.0), Vec(xs.c, 0.0)};
  const double m = static_cast<double>(xs.n) * xs.h * xs.w;
  for (int c = 0; c < xs.c; ++c) {
    double s = 0.0;
    for (int n = 0; n < xs.n; ++n)
      for (int h = 0; h < xs.h; ++h)
        for (int w = 0; w < xs.w; ++w) s += x[idx(xs, n, c, h, w)];
    const double mean = s / m;
    double ss = 0.0;
    for (int n = 0; n < xs.n; ++n)
      for (int h = 0; h < xs.h; ++h)
        for (int w = 0; w < xs.w; ++w) {
          const double d = x[idx(xs, n, c, h, w)] - mean;
          ss += d * d;
        }
    f.mean[c] = mean;
    f.var[c] = ss / m;
    f.var_unbiased[c] = m > 1 ? ss / (m - 1) : ss / m;
    const double invstd = 1.0 / std::sqrt(f.var[c] + eps);
    for (int n = 0; n < xs.n; ++n)
      for (int h = 0; h < xs.h; ++h)
        for (int w = 0; w < xs.w; ++w) {
          const size_t i = idx(xs, n, c, h, w);
          f.y[i] = gamma[c] * (x[i] - mean) * invstd + beta[c];
        }
  }
  return f;
}

BnGrads batchnorm_train_backward(const Vec& x, const Shape& xs, const Vec& gamma,
                                 const Vec& dy, double eps) {
  // Textbook chain rule through mean and variance (not the fused formula the engine uses).
  const Vec zeros(xs.c, 0.0);
  const BnForward f = batchnorm_train_forward(x, xs, Vec(xs.c, 1.0), zeros, eps);  // x̂
  BnGrads g{Vec(x.size(), 0.0), Vec(xs.c, 0.0), Vec(xs.c, 0.0)};
  const double m = static_cast<double>(xs.n) * xs.h * xs.w;
  for (int c = 0; c < xs.c; ++c) {
    const double invstd = 1.0 / std::sqrt(f.var[c] + eps);
    double dvar = 0.0, dmean = 0.0, sum_dxhat = 0.0, sum_xm = 0.0;
    for (int n = 0; n < xs.n; ++n)
      for (int h = 0; h < xs.h; ++h)
        for (int w = 0; w < xs.w; ++w) {
          const size_t i = idx(xs, n, c, h, w);
          g.dbeta[c] += dy[i];
          g.dgamma[c] += dy[i] * f.y[i];
          const double dxhat = dy[i] * gamma[c];
          const double xm = x[i] - f.mean[c];
          dvar += dxhat * xm * -0.5 * invstd * invstd * invstd;
          sum_dxhat += dxhat;
          sum_xm += xm;
        }
    dmean = -sum_dxhat * invstd + dvar * -2.0 * sum_xm / m;
    for (int n = 0; n < xs.n; ++n)
      for (int h = 0; h < xs.h; ++h)
        for (int w = 0; w < xs.w; ++w) {
          const size_t i = idx(xs, n, c, h, w);
          const double xm = x[i] - f.mean[c];
          g.dx[i] = dy[i] * gamma[c] * invstd + dvar * 2.0 * xm / m + dmean / m;
        }
  }
  return g;
}

Vec batchnorm_eval_forward(const Vec& x, const Shape& xs, const Vec& gamma, const Vec& beta,
                           const Vec& running_mean, const Vec& running_var, double eps) {
  Vec y(x.size());
  for (int n = 0; n < xs.n; ++n)
    for (int c = 0; c < xs.c; ++c)
      for (int h = 0; h < xs.h; ++h)
        for (int w = 0; w < xs.w; ++w) {
          const size_t i = idx(xs, n, c, h, w);
          y[i] = gamma[c] * (x[i] - running_mean[c]) / std::sqrt(running_var[c] + eps) + beta[c];
        }
  return y;
}

void batchnorm_running_update(Vec& running, const Vec& batch, double momentum) {
  for (size_t c = 0; c < running.size(); ++c)
    running[c] = momentum * running[c] + (1.0 - momentum) * batch[c];
}

// ---- max-pooling -------------------------------------------------------------------------------

namespace {
// (dy, dx) offset of the first maximum of window (oy, ox) in scan order.
void window_argmax(const Vec& x, const Shape& xs, int n, int c, int oy, int ox, int* ky,
                   int* kx) {
  double best = x[idx(xs, n, c, 2 * oy, 2 * ox)];
  *ky = 0;
  *kx = 0;
  for (int dy = 0; dy < 2; ++dy)
    for (int dx = 0; dx < 2; ++dx) {
      const double v = x[idx(xs, n, c, 2 * oy + dy, 2 * ox + dx)];
      if (v > best) {  // strict: a later equal value does not win
        best = v;
        *ky = dy;
        *kx = dx;
      }
    }
}
}  // namespace

Vec maxpool2_forward(const Vec& x, const Shape& xs) {
  const Shape ys{xs.n, xs.c, xs.h / 2, xs.w / 2};
  Vec y(ys.size());
  for (int n = 0; n < xs.n; ++n)
    for (int c = 0; c < xs.c; ++c)
      for (int oy = 0; oy < ys.h; ++oy)
        for (int ox = 0; ox < ys.w; ++ox) {
          int ky, kx;
          window_argmax(x, xs, n, c, oy, ox, &ky, &kx);
          y[idx(ys, n, c, oy, ox)] = x[idx(xs, n, c, 2 * oy + ky, 2 * ox + kx)];
        }
  return y;
}

Vec maxpool2_backward(const Vec& x, const Shape& xs, const Vec& dy) {
  const Shape ys{xs.n, xs.c, xs.h / 2, xs.w / 2};
  Vec dx(x.size(), 0.0);
  for (int n = 0; n < xs.n; ++n)
    for (int c = 0; c < xs.c; ++c)
      for (int oy = 0; oy < ys.h; ++oy)
        for (int ox = 0; ox < ys.w; ++ox) {
          int ky, kx;
          window_argmax(x, xs, n, c, oy, ox, &ky, &kx);
          dx[idx(xs, n, c, 2 * oy + ky, 2 * ox + kx)] += dy[idx(ys, n, c, oy, ox)];
        }
  return dx;
}

// ---- ReLU --------------------------------------------------------------------------------------

Vec relu_forward(const Vec& x) {
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] > 0.0 ? x[i] : 0.0;
  return y;
}

Vec relu_backward(const Vec& x, const Vec& dy) {
  Vec dx(x.size());
  for (size_t i = 0; i < x.size(); ++i) dx[i] = x[i] > 0.0 ? dy[i] : 0.0;
  return dx;
}

// ---- dense -------------------------------------------------------------------------------------

Vec dense_forward(const Vec& x, int n, const Vec& w, const Vec& b, int in, int out) {
  Vec y(static_cast<size_t>(n) * out);
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < out; ++o) {
      double s = b[o];
      for (int j = 0; j < in; ++j)
        s += w[static_cast<size_t>(o) * in + j] * x[static_cast<size_t>(i) * in + j];
      y[static_cast<size_t>(i) * out + o] = s;
    }
  return y;
}

DenseGrads dense_backward(const Vec& x, int n, const Vec& w, const Vec& dy, int in, int out) {
  DenseGrads g{Vec(x.size(), 0.0), Vec(w.size(), 0.0), Vec(out, 0.0)};
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < out; ++o) {
      const double d = dy[static_cast<size_t>(i) * out + o];
      g.db[o] += d;
      for (int j = 0; j < in; ++j) {
        g.dw[static_cast<size_t>(o) * in + j] += d * x[static_cast<size_t>(i) * in + j];
        g.dx[static_cast<size_t>(i) * in + j] += d * w[static_cast<size_t>(o) * in + j];
      }
    }
  return g;
}

// ---- softmax cross-entropy --------------------------------------------------------------------

XentResult softmax_xent(const Vec& logits, int n, int k, const std::vector<uint8_t>& labels,
                        double scale) {
  XentResult r;
  r.dlogits.assign(static_cast<size_t>(n) * k, 0.0);
  r.predicted.assign(n, 0);
  for (int i = 0; i < n; ++i) {
    const double* z = logits.data() + static_cast<size_t>(i) * k;
    int arg = 0;
    for (int j = 1; j < k; ++j)
      if (z[j] > z[arg]) arg = j;
    double sum = 0.0;
    for (int j = 0; j < k; ++j) sum += std::exp(z[j] - z[arg]);
    const double log_sum_exp = z[arg] + std::log(sum);
    r.loss_sum += log_sum_exp - z[labels[i]];
    for (int j = 0; j < k; ++j)
      r.dlogits[static_cast<size_t>(i) * k + j] =
          (std::exp(z[j] - log_sum_exp) - (j == labels[i] ? 1.0 : 0.0)) * scale;
    r.predicted[i] = arg;
    r.correct += arg == labels[i];
  }
  return r;
}

}  // namespace mnist_dist::ref
