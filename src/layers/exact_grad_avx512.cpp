// AVX-512 paths of layers/exact_grad.h (declared in exact_grad_avx512.h): the same operations
// in the same order as the portable loops in exact_grad.cpp, so the same bits.
#include "layers/exact_grad_avx512.h"

#include <algorithm>
#include <limits>

#if defined(__x86_64__) && defined(__GNUC__)
#define MD_EXACT_AVX512 1
#include <immintrin.h>
#else
#define MD_EXACT_AVX512 0
#endif

#include "layers/exact_grad.h"

namespace mnist_dist::exact {

#if MD_EXACT_AVX512

bool avx512_path_available() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  return ok;
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,fma")
// GCC 12's _mm512_reduce_max_ps self-initialises an undefined vector: a known false warning.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

void unfold_and_clear_avx512(int64_t* acc, size_t n, float* out) {
  const __m256 scale = _mm256_set1_ps(kFromFixed);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512i q = _mm512_loadu_si512(acc + i);
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm512_cvtepi64_ps(q), scale));
    _mm512_storeu_si512(acc + i, _mm512_setzero_si512());
  }
  for (; i < n; ++i) {
    out[i] = from_fixed(acc[i]);
    acc[i] = 0;
  }
}

namespace {

constexpr int kRows = 8;  // rows of dW per register block (× 16 columns)

// Adds to_fixed(f) of 16 floats to (lo, hi) and tracks max |f| and NaNs.
inline void fold16(__m512 f, __m512i& lo, __m512i& hi, __m512& maxabs, __mmask16& nan) {
  nan |= _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
  maxabs = _mm512_max_ps(maxabs, _mm512_abs_ps(f));
  const __m512 s = _mm512_mul_ps(f, _mm512_set1_ps(kToFixed));
  lo = _mm512_add_epi64(lo, _mm512_cvtps_epi64(_mm512_castps512_ps256(s)));
  hi = _mm512_add_epi64(hi, _mm512_cvtps_epi64(_mm512_extractf32x8_ps(s, 1)));
}

}  // namespace

float dense_weight_grad_avx512(const float* dy, const float* x, int n, int out, int in, int chunk,
                               int r0, int r1, int64_t* dw) {
  __m512 maxabs = _mm512_setzero_ps();
  __mmask16 nan = 0;
  float tail_max = 0.0f;
  int o = r0;
  for (; o + kRows <= r1; o += kRows) {
    int i = 0;
    for (; i + 16 <= in; i += 16) {
      __m512i lo[kRows], hi[kRows];
      for (int r = 0; r < kRows; ++r) lo[r] = hi[r] = _mm512_setzero_si512();
      for (int s0 = 0; s0 < n; s0 += chunk) {
        const int s1 = std::min(n, s0 + chunk);
        __m512 f[kRows];
        for (int r = 0; r < kRows; ++r) f[r] = _mm512_setzero_ps();
        for (int s = s0; s < s1; ++s) {
          const __m512 xv = _mm512_loadu_ps(x + static_cast<size_t>(s) * in + i);
          const float* d = dy + static_cast<size_t>(s) * out + o;
          for (int r = 0; r < kRows; ++r) f[r] = _mm512_fmadd_ps(_mm512_set1_ps(d[r]), xv, f[r]);
        }
        for (int r = 0; r < kRows; ++r) fold16(f[r], lo[r], hi[r], maxabs, nan);
      }
      for (int r = 0; r < kRows; ++r) {
        int64_t* p = dw + static_cast<size_t>(o + r) * in + i;
        _mm512_storeu_si512(p, _mm512_add_epi64(_mm512_loadu_si512(p), lo[r]));
        _mm512_storeu_si512(p + 8, _mm512_add_epi64(_mm512_loadu_si512(p + 8), hi[r]));
      }
    }
    if (i < in) tail_max = std::max(tail_max, dense_weight_block(dy, x, n, out, in, chunk, o, o + kRows, i, in, dw));
  }
  if (o < r1) tail_max = std::max(tail_max, dense_weight_block(dy, x, n, out, in, chunk, o, r1, 0, in, dw));
  if (nan != 0) return std::numeric_limits<float>::quiet_NaN();
  return std::max(tail_max, _mm512_reduce_max_ps(maxabs));
}

#pragma GCC diagnostic pop
#pragma GCC pop_options

#else

bool avx512_path_available() { return false; }
void unfold_and_clear_avx512(int64_t*, size_t, float*) {}
float dense_weight_grad_avx512(const float*, const float*, int, int, int, int, int, int, int64_t*) { return 0.0f; }

#endif

}  // namespace mnist_dist::exact
