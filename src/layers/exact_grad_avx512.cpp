// AVX-512 paths of layers/exact_grad.h (declared in exact_grad_avx512.h): the same operations
// in the same order as the portable loops in exact_grad.cpp, so the same bits.
#include "layers/exact_grad_avx512.h"

#include <algorithm>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#define MD_EXACT_AVX512 1
#include <immintrin.h>
#else
#define MD_EXACT_AVX512 0
#endif

#include "core/aligned.h"
#include "layers/exact_grad.h"

namespace mnist_dist::exact {

#if MD_EXACT_AVX512

bool avx512_path_available() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  return ok;
}

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,fma")
// GCC 12's _mm512_castps512_ps256 reads an undefined vector: a known false warning once inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

void unfold_avx512(const int64_t* acc, size_t n, float* out) {
  const __m256 scale = _mm256_set1_ps(kFromFixed);
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm512_cvtepi64_ps(_mm512_loadu_si512(acc + i)), scale));
  for (; i < n; ++i) out[i] = from_fixed(acc[i]);
}

namespace {
inline __mmask16 mask_of(int count) {  // the first min(count, 16) lanes (none for count <= 0)
  return count >= 16 ? static_cast<__mmask16>(0xFFFF)
                     : count <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << count) - 1u);
}
}  // namespace

void unfold_sum_avx512(const int64_t* const* bufs, int nbufs, size_t offset, size_t n, float* out) {
  const __m256 scale = _mm256_set1_ps(kFromFixed);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m512i q = _mm512_loadu_si512(bufs[0] + offset + i);
    for (int k = 1; k < nbufs; ++k) q = _mm512_add_epi64(q, _mm512_loadu_si512(bufs[k] + offset + i));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm512_cvtepi64_ps(q), scale));
  }
  for (; i < n; ++i) {
    uint64_t q = static_cast<uint64_t>(bufs[0][offset + i]);
    for (int k = 1; k < nbufs; ++k) q += static_cast<uint64_t>(bufs[k][offset + i]);
    out[i] = from_fixed(static_cast<int64_t>(q));
  }
}

float max_abs_avx512(const float* v, size_t n, float floor, bool* not_finite) {
  __m512 m = _mm512_set1_ps(floor), poison = _mm512_setzero_ps();
  const __m512 zero = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(v + i);
    m = _mm512_max_ps(m, _mm512_abs_ps(x));
    poison = _mm512_add_ps(poison, _mm512_mul_ps(x, zero));  // NaN once any x is NaN or ±inf
  }
  if (i < n) {
    const __m512 x = _mm512_maskz_loadu_ps(mask_of(static_cast<int>(n - i)), v + i);
    m = _mm512_max_ps(m, _mm512_abs_ps(x));
    poison = _mm512_add_ps(poison, _mm512_mul_ps(x, zero));
  }
  *not_finite = _mm512_cmp_ps_mask(poison, poison, _CMP_UNORD_Q) != 0;
  return _mm512_reduce_max_ps(m);
}

namespace {

// Adds llrint of 16 floats (already scaled by 2^40) to (lo, hi).
inline void fold16(__m512 s, __m512i& lo, __m512i& hi) {
  lo = _mm512_add_epi64(lo, _mm512_cvtps_epi64(_mm512_castps512_ps256(s)));
  hi = _mm512_add_epi64(hi, _mm512_cvtps_epi64(_mm512_extractf32x8_ps(s, 1)));
}


// Rows [o, o + R) × 32 columns of dW, all chunks: per chunk the fused multiply-adds in sample
// order from zero, then the fold into the tile's fixed-point sums (q), stored to dw (added, with
// `add`) once, `cols` columns of them (the strip's width); or, with dwf, rounded back to float
// (from_fixed, as unfold) and stored there instead. xp: the strip of x packed (n × 32, 64-byte
// aligned, zeros past the strip's width).
template <int R>
inline void tile(const float* dyt, const float* xp, int n, int in, int chunk, int o, int i, int cols, bool add,
                 int64_t* dw, float* dwf) {
  __m512i lo[R][2], hi[R][2];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 2; ++v) lo[r][v] = hi[r][v] = _mm512_setzero_si512();
  const float* d = dyt + static_cast<size_t>(o) * n;
  for (int s0 = 0; s0 < n; s0 += chunk) {
    const int s1 = std::min(n, s0 + chunk);
    __m512 f[R][2];
    for (int r = 0; r < R; ++r) f[r][0] = f[r][1] = _mm512_setzero_ps();
    for (int s = s0; s < s1; ++s) {
      const __m512 x0 = _mm512_load_ps(xp + 32 * s), x1 = _mm512_load_ps(xp + 32 * s + 16);
      for (int r = 0; r < R; ++r) {
        const __m512 dv = _mm512_set1_ps(d[static_cast<size_t>(r) * n + s]);
        f[r][0] = _mm512_fmadd_ps(dv, x0, f[r][0]);
        f[r][1] = _mm512_fmadd_ps(dv, x1, f[r][1]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < 2; ++v) fold16(f[r][v], lo[r][v], hi[r][v]);
  }
  const __mmask16 m0 = mask_of(cols), m1 = mask_of(cols - 16);
  if (dwf != nullptr) {
    const __m256 scale = _mm256_set1_ps(kFromFixed);
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < 2; ++v) {
        float* p = dwf + static_cast<size_t>(o + r) * in + i + 16 * v;
        const __mmask16 m = v == 0 ? m0 : m1;
        const __m512 f = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_mul_ps(_mm512_cvtepi64_ps(lo[r][v]), scale)),
                                            _mm256_mul_ps(_mm512_cvtepi64_ps(hi[r][v]), scale), 1);
        _mm512_mask_storeu_ps(p, m, f);
      }
    return;
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 2; ++v) {
      int64_t* p = dw + static_cast<size_t>(o + r) * in + i + 16 * v;
      const __mmask16 m = v == 0 ? m0 : m1;
      const __mmask8 ml = static_cast<__mmask8>(m & 0xFF), mh = static_cast<__mmask8>(m >> 8);
      if (add) {
        lo[r][v] = _mm512_add_epi64(_mm512_maskz_loadu_epi64(ml, p), lo[r][v]);
        hi[r][v] = _mm512_add_epi64(_mm512_maskz_loadu_epi64(mh, p + 8), hi[r][v]);
      } else if (m == 0xFFFF && (reinterpret_cast<uintptr_t>(p) & 63) == 0) {
        // Whole cache lines, read by another core (the exchange): stored without reading them first.
        _mm512_stream_si512(reinterpret_cast<__m512i*>(p), lo[r][v]);
        _mm512_stream_si512(reinterpret_cast<__m512i*>(p + 8), hi[r][v]);
        continue;
      }
      _mm512_mask_storeu_epi64(p, ml, lo[r][v]);
      _mm512_mask_storeu_epi64(p + 8, mh, hi[r][v]);
    }
}

}  // namespace

// Strips of 32 columns outermost: the strip of x is packed once (aligned rows: no loads split
// across cache lines) and stays in L1 while every row block reads it.
void dense_weight_grad_avx512(const float* dyt, const float* x, int n, int in, int chunk, int r0, int r1,
                              bool add, int64_t* dw, float* dwf) {
  thread_local std::vector<float, AlignedAllocator<float>> strip;
  if (strip.size() < static_cast<size_t>(n) * 32) strip.assign(static_cast<size_t>(n) * 32, 0.0f);
  float* xp = strip.data();
  for (int i = 0; i < in; i += 32) {
    const int cols = std::min(32, in - i);
    const __mmask16 m0 = mask_of(cols), m1 = mask_of(cols - 16);
    for (int s = 0; s < n; ++s) {
      const float* xs = x + static_cast<size_t>(s) * in + i;
      _mm512_store_ps(xp + 32 * s, _mm512_maskz_loadu_ps(m0, xs));
      _mm512_store_ps(xp + 32 * s + 16, _mm512_maskz_loadu_ps(m1, xs + 16));
    }
    int o = r0;
    for (; o + 4 <= r1; o += 4) tile<4>(dyt, xp, n, in, chunk, o, i, cols, add, dw, dwf);
    for (; o < r1; ++o) tile<1>(dyt, xp, n, in, chunk, o, i, cols, add, dw, dwf);
  }
  _mm_sfence();  // the streamed stores are visible before anyone is told the gradients are ready
}

#pragma GCC diagnostic pop
#pragma GCC pop_options

#else

bool avx512_path_available() { return false; }
void unfold_avx512(const int64_t*, size_t, float*) {}
void unfold_sum_avx512(const int64_t* const*, int, size_t, size_t, float*) {}
float max_abs_avx512(const float*, size_t, float floor, bool*) { return floor; }
void dense_weight_grad_avx512(const float*, const float*, int, int, int, int, int, bool, int64_t*, float*) {}

#endif

}  // namespace mnist_dist::exact
