// The portable paths of layers/exact_grad.h and the dispatch to exact_grad_avx512.cpp.
#include "layers/exact_grad.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <vector>

#include "core/error.h"
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
  throw TrainingDiverged(msg);
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

void unfold(bool avx512, const int64_t* acc, size_t n, float* out) {
  if (avx512 && avx512_path_available()) return unfold_avx512(acc, n, out);
  for (size_t i = 0; i < n; ++i) out[i] = from_fixed(acc[i]);
}

namespace {

// dw (added to with `add`), or with dwf the sums rounded back to float there.
void dense_weight_grad_portable(const float* dyt, const float* x, int n, int in, int chunk, int r0, int r1,
                                bool add, int64_t* dw, float* dwf) {
  for (int o = r0; o < r1; ++o)
    for (int i = 0; i < in; ++i) {
      const size_t at = static_cast<size_t>(o) * in + i;
      int64_t q = add && dwf == nullptr ? dw[at] : 0;
      for (int s0 = 0; s0 < n; s0 += chunk) {
        float f = 0.0f;
        for (int s = s0; s < std::min(n, s0 + chunk); ++s)
          f = std::fma(dyt[static_cast<size_t>(o) * n + s], x[static_cast<size_t>(s) * in + i], f);
        q += std::llrint(static_cast<double>(f));  // dyt carries the 2^40
      }
      if (dwf != nullptr) {
        dwf[at] = from_fixed(q);
      } else {
        dw[at] = q;
      }
    }
}

// Row o of the bias: per chunk plain adds in sample order, each chunk rounded to fixed point.
int64_t bias_sum(const float* dyt, int n, int chunk, int o) {
  int64_t q = 0;
  for (int s0 = 0; s0 < n; s0 += chunk) {
    float f = 0.0f;
    for (int s = s0; s < std::min(n, s0 + chunk); ++s) f += dyt[static_cast<size_t>(o) * n + s];
    q += std::llrint(static_cast<double>(f));
  }
  return q;
}

}  // namespace

void dense_weight_grad(bool avx512, const float* dyt, const float* x, int n, int out, int in, int chunk,
                       int r0, int r1, bool add, int64_t* dw, int64_t* db) {
  (void)out;
  for (int o = r0; o < r1; ++o) db[o] = (add ? db[o] : 0) + bias_sum(dyt, n, chunk, o);
  if (avx512 && avx512_path_available()) return dense_weight_grad_avx512(dyt, x, n, in, chunk, r0, r1, add, dw);
  dense_weight_grad_portable(dyt, x, n, in, chunk, r0, r1, add, dw, nullptr);
}

void dense_weight_grad_rounded(bool avx512, const float* dyt, const float* x, int n, int in, int chunk, int r0,
                               int r1, float* dw, int b0, int b1, float* db) {
  for (int o = b0; o < b1; ++o) db[o] = from_fixed(bias_sum(dyt, n, chunk, o));
  if (r1 <= r0) return;
  if (avx512 && avx512_path_available()) return dense_weight_grad_avx512(dyt, x, n, in, chunk, r0, r1, false, nullptr, dw);
  dense_weight_grad_portable(dyt, x, n, in, chunk, r0, r1, false, nullptr, dw);
}

void scale_to_fixed(float* v, size_t n) {
  for (size_t i = 0; i < n; ++i) v[i] *= kToFixed;
}

void unfold_sum(bool avx512, const int64_t* const* bufs, int nbufs, size_t begin, size_t end, float* out) {
  if (avx512 && avx512_path_available()) return unfold_sum_avx512(bufs, nbufs, begin, end - begin, out + begin);
  for (size_t i = begin; i < end; ++i) {
    uint64_t q = static_cast<uint64_t>(bufs[0][i]);  // unsigned: wraps instead of overflowing
    for (int k = 1; k < nbufs; ++k) q += static_cast<uint64_t>(bufs[k][i]);
    out[i] = from_fixed(static_cast<int64_t>(q));
  }
}

float dense_bound(bool avx512, int threads, const float* dy, const float* x, int n, int out, int in, int chunk) {
  // max |dy| and max |x| over the batch, and whether any value is not finite.
  const bool vec = avx512 && avx512_path_available();
  float mdy = 0.0f, mx = 1.0f;
  bool bad = false;
#pragma omp parallel for schedule(static) num_threads(threads) reduction(max : mdy, mx) reduction(|| : bad)
  for (int s = 0; s < n; ++s) {
    const float* ds = dy + static_cast<size_t>(s) * out;
    const float* xs = x + static_cast<size_t>(s) * in;
    bool b1 = false, b2 = false;
    if (vec) {
      mdy = max_abs_avx512(ds, static_cast<size_t>(out), mdy, &b1);
      mx = max_abs_avx512(xs, static_cast<size_t>(in), mx, &b2);
    } else {
      for (int o = 0; o < out; ++o) mdy = std::max(mdy, std::fabs(ds[o])), b1 = b1 || !std::isfinite(ds[o]);
      for (int i = 0; i < in; ++i) mx = std::max(mx, std::fabs(xs[i])), b2 = b2 || !std::isfinite(xs[i]);
    }
    bad = bad || b1 || b2;
  }
  return bad ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(std::min(n, chunk)) * mdy * mx;
}

}  // namespace mnist_dist::exact
