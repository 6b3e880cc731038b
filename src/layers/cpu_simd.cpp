// cpu_simd.h: the portable loops, and the dispatch to the AVX-512 versions
// (cpu_simd_avx512.cpp) when the caller asks for them.
#include "layers/cpu_simd.h"

#include <algorithm>
#include <cstring>

#include "core/kernel_choice.h"
#include "layers/cpu_simd_avx512.h"
#include "layers/math/bn_math.h"
#include "layers/math/pool_math.h"

namespace mnist_dist::cpu_simd {
namespace {

// ---- portable loops ----------------------------------------------------------------------

void sum_sumsq_portable(const float* x, size_t n, double& s1, double& s2) {
  double a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};  // four chains: no add-latency bound
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) {
      const double v = x[i + j];
      a[j] += v;
      b[j] += v * v;
    }
  for (; i < n; ++i) {
    const double v = x[i];
    a[0] += v;
    b[0] += v * v;
  }
  s1 += (a[0] + a[1]) + (a[2] + a[3]);
  s2 += (b[0] + b[1]) + (b[2] + b[3]);
}

void sum_dy_dyxhat_portable(const float* dy, const float* x, size_t n, float mean, float invstd,
                            double& sdy, double& sdyx) {
  double a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) {
      a[j] += dy[i + j];
      b[j] += static_cast<double>(dy[i + j]) * bn::xhat(x[i + j], mean, invstd);
    }
  for (; i < n; ++i) {
    a[0] += dy[i];
    b[0] += static_cast<double>(dy[i]) * bn::xhat(x[i], mean, invstd);
  }
  sdy += (a[0] + a[1]) + (a[2] + a[3]);
  sdyx += (b[0] + b[1]) + (b[2] + b[3]);
}

void maxpool2_forward_portable(const float* x, int h, int w, float* y, uint8_t* arg) {
  const int oh = h / 2, ow = w / 2;
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox) {
      const float* r0 = x + (2 * oy) * w + 2 * ox;
      float best;
      arg[oy * ow + ox] = pool::window_max(r0, r0 + w, best);
      y[oy * ow + ox] = best;
    }
}

void maxpool2_backward_portable(const float* dy, const uint8_t* arg, int h, int w, float* dx) {
  const int oh = h / 2, ow = w / 2;
  std::memset(dx, 0, sizeof(float) * static_cast<size_t>(h) * w);
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox) {
      const uint8_t k = arg[oy * ow + ox];
      dx[(2 * oy + (k >> 1)) * w + 2 * ox + (k & 1)] = dy[oy * ow + ox];
    }
}

}  // namespace

// ---- dispatch ----------------------------------------------------------------------------

void sum_sumsq(bool avx512, const float* x, size_t n, double& s1, double& s2) {
#if MD_CPU_SIMD_AVX512
  if (avx512) return avx::sum_sumsq(x, n, s1, s2);
#else
  (void)avx512;
#endif
  sum_sumsq_portable(x, n, s1, s2);
}

void sum_dy_dyxhat(bool avx512, const float* dy, const float* x, size_t n, float mean, float invstd,
                   double& sdy, double& sdyx) {
#if MD_CPU_SIMD_AVX512
  if (avx512) return avx::sum_dy_dyxhat(dy, x, n, mean, invstd, sdy, sdyx);
#else
  (void)avx512;
#endif
  sum_dy_dyxhat_portable(dy, x, n, mean, invstd, sdy, sdyx);
}

void bn_normalize(bool avx512, const float* x, size_t n, float mean, float invstd, float gamma, float beta,
                  float* y) {
#if MD_CPU_SIMD_AVX512
  if (avx512) return avx::bn_normalize(x, n, mean, invstd, gamma, beta, y);
#else
  (void)avx512;
#endif
  for (size_t i = 0; i < n; ++i) y[i] = bn::forward(x[i], mean, invstd, gamma, beta);
}

void bn_backward_dx(bool avx512, const float* dy, const float* x, size_t n, float mean, float invstd,
                    float gamma_invstd, float inv_m, float sum_dy, float sum_dy_xhat, float* dx) {
#if MD_CPU_SIMD_AVX512
  if (avx512)
    return avx::bn_backward_dx(dy, x, n, mean, invstd, gamma_invstd, inv_m, sum_dy, sum_dy_xhat, dx);
#else
  (void)avx512;
#endif
  for (size_t i = 0; i < n; ++i)
    dx[i] = bn::backward_dx(dy[i], bn::xhat(x[i], mean, invstd), gamma_invstd, inv_m, sum_dy,
                            sum_dy_xhat);
}

void relu_forward(bool avx512, const float* x, size_t n, float* y) {
#if MD_CPU_SIMD_AVX512
  if (avx512) return avx::relu_forward(x, n, y);
#else
  (void)avx512;
#endif
  for (size_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward(bool avx512, const float* y, const float* dy, size_t n, float* dx) {
#if MD_CPU_SIMD_AVX512
  if (avx512) return avx::relu_backward(y, dy, n, dx);
#else
  (void)avx512;
#endif
  for (size_t i = 0; i < n; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void maxpool2_forward(bool avx512, const float* x, int h, int w, float* y, uint8_t* arg) {
#if MD_CPU_SIMD_AVX512
  if (avx512) return avx::maxpool2_forward(x, h, w, y, arg);
#else
  (void)avx512;
#endif
  maxpool2_forward_portable(x, h, w, y, arg);
}

void maxpool2_backward(bool avx512, const float* dy, const uint8_t* arg, int h, int w, float* dx) {
#if MD_CPU_SIMD_AVX512
  if (avx512) return avx::maxpool2_backward(dy, arg, h, w, dx);
#else
  (void)avx512;
#endif
  maxpool2_backward_portable(dy, arg, h, w, dx);
}

void transpose(bool avx512, const float* src, int rows, int cols, int ld_src, float* dst,
               int ld_dst, const float* bias) {
#if MD_CPU_SIMD_AVX512
  if (avx512) return avx::transpose(src, rows, cols, ld_src, dst, ld_dst, bias);
#else
  (void)avx512;
#endif
  constexpr int kTile = 16;
  for (int i0 = 0; i0 < rows; i0 += kTile)
    for (int j0 = 0; j0 < cols; j0 += kTile) {
      const int i1 = std::min(rows, i0 + kTile), j1 = std::min(cols, j0 + kTile);
      for (int j = j0; j < j1; ++j) {
        float* d = dst + static_cast<size_t>(j) * ld_dst;
        if (bias != nullptr)
          for (int i = i0; i < i1; ++i) d[i] = src[static_cast<size_t>(i) * ld_src + j] + bias[i];
        else
          for (int i = i0; i < i1; ++i) d[i] = src[static_cast<size_t>(i) * ld_src + j];
      }
    }
}

void transpose(const float* src, int rows, int cols, int ld_src, float* dst, int ld_dst,
               const float* bias) {
  transpose(kernels_from_env().use_avx512, src, rows, cols, ld_src, dst, ld_dst, bias);
}

}  // namespace mnist_dist::cpu_simd
