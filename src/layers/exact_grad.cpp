// The portable paths of layers/exact_grad.h and the dispatch to exact_grad_avx512.cpp.
#include "layers/exact_grad.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "layers/exact_grad_avx512.h"

namespace mnist_dist::exact {

void check_range(float max_abs, int total_chunks, const char* what) {
  const float limit = chunk_limit(total_chunks);
  if (max_abs <= limit) return;  // also false for NaN
  char msg[256];
  std::snprintf(msg, sizeof msg,
                "training diverged: a chunk's gradient of %s reached %g, beyond the deterministic mode's "
                "fixed-point range (%g at %d chunks per step); try a smaller --lr",
                what, static_cast<double>(max_abs), static_cast<double>(limit), total_chunks);
  throw std::runtime_error(msg);
}

float fold(const float* v, size_t n, int64_t* acc) {
  float m = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    acc[i] += to_fixed(v[i]);
    const float a = std::fabs(v[i]);
    m = (a > m || a != a) ? a : m;
  }
  return m;
}

void unfold_and_clear(bool avx512, int64_t* acc, size_t n, float* out) {
  if (avx512 && avx512_path_available()) return unfold_and_clear_avx512(acc, n, out);
  for (size_t i = 0; i < n; ++i) {
    out[i] = from_fixed(acc[i]);
    acc[i] = 0;
  }
}

// Element (o, i) of one chunk [s0, s1), as the AVX-512 path computes it.
static float dense_element(const float* dy, const float* x, int out, int in, int s0, int s1, int o, int i) {
  float f = 0.0f;
  for (int s = s0; s < s1; ++s)
    f = std::fma(dy[static_cast<size_t>(s) * out + o], x[static_cast<size_t>(s) * in + i], f);
  return f;
}

float dense_bias_rows(const float* dy, int n, int out, int chunk, int r0, int r1, int64_t* db) {
  float m = 0.0f;
  for (int o = r0; o < r1; ++o)
    for (int s0 = 0; s0 < n; s0 += chunk) {
      float f = 0.0f;
      for (int s = s0; s < std::min(n, s0 + chunk); ++s) f += dy[static_cast<size_t>(s) * out + o];
      db[o] += to_fixed(f);
      m = std::max(m, std::fabs(f));
      if (f != f) m = f;
    }
  return m;
}

float dense_weight_block(const float* dy, const float* x, int n, int out, int in, int chunk,
                         int r0, int r1, int i0, int i1, int64_t* dw) {
  float m = 0.0f;
  for (int o = r0; o < r1; ++o)
    for (int s0 = 0; s0 < n; s0 += chunk)
      for (int i = i0; i < i1; ++i) {
        const float f = dense_element(dy, x, out, in, s0, std::min(n, s0 + chunk), o, i);
        dw[static_cast<size_t>(o) * in + i] += to_fixed(f);
        const float a = std::fabs(f);
        m = (a > m || a != a) ? a : m;
      }
  return m;
}

float dense_weight_grad(bool avx512, const float* dy, const float* x, int n, int out, int in,
                        int chunk, int r0, int r1, int64_t* dw, int64_t* db) {
  float m = dense_bias_rows(dy, n, out, chunk, r0, r1, db);
  float w = 0.0f;
  if (avx512 && avx512_path_available()) {
    w = dense_weight_grad_avx512(dy, x, n, out, in, chunk, r0, r1, dw);
  } else {
    w = dense_weight_block(dy, x, n, out, in, chunk, r0, r1, 0, in, dw);
  }
  return (w > m || w != w) ? w : m;
}

}  // namespace mnist_dist::exact
