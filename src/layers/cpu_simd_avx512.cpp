// AVX-512 versions of cpu_simd.h's loops (declared in cpu_simd_avx512.h), compiled for AVX-512
// in this file only and called by cpu_simd.cpp when the caller asks for them (which it only does
// where the CPU has AVX-512F). Element-wise results equal the portable loops' (same operations
// in the same order, no contraction); the double sums differ in order only.
#include "layers/cpu_simd_avx512.h"

#include <algorithm>
#include <cstring>

#include "layers/math/bn_math.h"

#if MD_CPU_SIMD_AVX512
#include <immintrin.h>
#endif

namespace mnist_dist::cpu_simd {

#if MD_CPU_SIMD_AVX512

#pragma GCC push_options
#pragma GCC target("avx512f")
// Keep mul and add separate (as in the portable loops, compiled without FMA) so both paths
// give bit-identical element-wise results.
#pragma GCC optimize("fp-contract=off")
// GCC 12's _mm512_reduce_add_pd self-initialises an undefined vector: a known false
// -Wuninitialized once inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

inline __mmask16 mask16(size_t lanes) {
  return lanes >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << lanes) - 1u);
}

inline __m512d lo_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
inline __m512d hi_pd(__m512 v) {
  return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

}  // namespace

namespace avx {

void sum_sumsq(const float* x, size_t n, double& s1, double& s2) {
  __m512d a0 = _mm512_setzero_pd(), a1 = a0, b0 = a0, b1 = a0;
  for (size_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(mask16(n - i), x + i);
    const __m512d l = lo_pd(v), h = hi_pd(v);
    a0 = _mm512_add_pd(a0, l);
    a1 = _mm512_add_pd(a1, h);
    b0 = _mm512_fmadd_pd(l, l, b0);  // the square of a float is exact in double
    b1 = _mm512_fmadd_pd(h, h, b1);
  }
  s1 += _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
  s2 += _mm512_reduce_add_pd(_mm512_add_pd(b0, b1));
}

void sum_dy_dyxhat(const float* dy, const float* x, size_t n, float mean, float invstd,
                          double& sdy, double& sdyx) {
  const __m512 m = _mm512_set1_ps(mean), is = _mm512_set1_ps(invstd);
  __m512d a0 = _mm512_setzero_pd(), a1 = a0, b0 = a0, b1 = a0;
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask16(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(k, dy + i);
    const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m), is);
    const __m512d gl = lo_pd(g), gh = hi_pd(g);
    a0 = _mm512_add_pd(a0, gl);
    a1 = _mm512_add_pd(a1, gh);
    b0 = _mm512_fmadd_pd(gl, lo_pd(xh), b0);  // float × float is exact in double
    b1 = _mm512_fmadd_pd(gh, hi_pd(xh), b1);
  }
  sdy += _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
  sdyx += _mm512_reduce_add_pd(_mm512_add_pd(b0, b1));
}

void bn_normalize(const float* x, size_t n, float mean, float invstd, float gamma,
                         float beta, float* y) {
  const __m512 m = _mm512_set1_ps(mean), is = _mm512_set1_ps(invstd), g = _mm512_set1_ps(gamma),
               b = _mm512_set1_ps(beta);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask16(n - i);
    const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m), is);
    _mm512_mask_storeu_ps(y + i, k, _mm512_add_ps(_mm512_mul_ps(g, xh), b));
  }
}

void bn_backward_dx(const float* dy, const float* x, size_t n, float mean, float invstd,
                           float gamma_invstd, float inv_m, float sum_dy, float sum_dy_xhat,
                           float* dx) {
  const __m512 m = _mm512_set1_ps(mean), is = _mm512_set1_ps(invstd),
               gi = _mm512_set1_ps(gamma_invstd), im = _mm512_set1_ps(inv_m),
               t1 = _mm512_set1_ps(inv_m * sum_dy), s2 = _mm512_set1_ps(sum_dy_xhat);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask16(n - i);
    const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m), is);
    const __m512 t3 = _mm512_mul_ps(_mm512_mul_ps(xh, im), s2);
    const __m512 d = _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, dy + i), t1), t3);
    _mm512_mask_storeu_ps(dx + i, k, _mm512_mul_ps(gi, d));
  }
}

void relu_forward(const float* x, size_t n, float* y) {
  const __m512 zero = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask16(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v));
  }
}

void relu_backward(const float* y, const float* dy, size_t n, float* dx) {
  const __m512 zero = _mm512_setzero_ps();
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask16(n - i);
    const __mmask16 pos = _mm512_mask_cmp_ps_mask(k, _mm512_maskz_loadu_ps(k, y + i), zero, _CMP_GT_OQ);
    _mm512_mask_storeu_ps(dx + i, k, _mm512_maskz_loadu_ps(pos, dy + i));
  }
}

void maxpool2_forward(const float* x, int h, int w, float* y, uint8_t* arg) {
  const int oh = h / 2, ow = w / 2;
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2), three = _mm512_set1_epi32(3);
  for (int oy = 0; oy < oh; ++oy) {
    const float* r0 = x + static_cast<size_t>(2 * oy) * w;
    const float* r1 = r0 + w;
    for (int ox = 0; ox < ow; ox += 16) {
      const int lanes = ow - ox < 16 ? ow - ox : 16;  // outputs in this vector
      const __mmask16 ka = mask16(2 * lanes), kb = mask16(2 * lanes > 16 ? 2 * lanes - 16 : 0);
      const float* p0 = r0 + 2 * ox;
      const float* p1 = r1 + 2 * ox;
      const __m512 a0 = _mm512_maskz_loadu_ps(ka, p0), b0 = _mm512_maskz_loadu_ps(kb, p0 + 16);
      const __m512 a1 = _mm512_maskz_loadu_ps(ka, p1), b1 = _mm512_maskz_loadu_ps(kb, p1 + 16);
      __m512 best = _mm512_permutex2var_ps(a0, even, b0);
      __m512i k = _mm512_setzero_si512();
      const __m512 c1 = _mm512_permutex2var_ps(a0, odd, b0);
      __mmask16 gt = _mm512_cmp_ps_mask(c1, best, _CMP_GT_OQ);
      best = _mm512_mask_mov_ps(best, gt, c1);
      k = _mm512_mask_mov_epi32(k, gt, one);
      const __m512 c2 = _mm512_permutex2var_ps(a1, even, b1);
      gt = _mm512_cmp_ps_mask(c2, best, _CMP_GT_OQ);
      best = _mm512_mask_mov_ps(best, gt, c2);
      k = _mm512_mask_mov_epi32(k, gt, two);
      const __m512 c3 = _mm512_permutex2var_ps(a1, odd, b1);
      gt = _mm512_cmp_ps_mask(c3, best, _CMP_GT_OQ);
      best = _mm512_mask_mov_ps(best, gt, c3);
      k = _mm512_mask_mov_epi32(k, gt, three);
      const __mmask16 ky = mask16(lanes);
      _mm512_mask_storeu_ps(y + static_cast<size_t>(oy) * ow + ox, ky, best);
      _mm512_mask_cvtepi32_storeu_epi8(arg + static_cast<size_t>(oy) * ow + ox, ky, k);
    }
  }
}

void maxpool2_backward(const float* dy, const uint8_t* arg, int h, int w, float* dx) {
  const int oh = h / 2, ow = w / 2;
  const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
  const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1),
                two = _mm512_set1_epi32(2), three = _mm512_set1_epi32(3);
  for (int oy = 0; oy < oh; ++oy) {
    float* d0 = dx + static_cast<size_t>(2 * oy) * w;
    float* d1 = d0 + w;
    for (int ox = 0; ox < ow; ox += 16) {
      const int lanes = ow - ox < 16 ? ow - ox : 16;
      // 16 codes straight from arg while they lie inside it (the lanes past `lanes` are
      // masked off below); the plane's last vectors through a copy.
      const size_t at = static_cast<size_t>(oy) * ow + ox;
      __m128i codes;
      if (at + 16 <= static_cast<size_t>(oh) * ow) {
        codes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(arg + at));
      } else {
        alignas(16) uint8_t tail[16] = {0};
        std::memcpy(tail, arg + at, lanes);
        codes = _mm_load_si128(reinterpret_cast<const __m128i*>(tail));
      }
      const __m512i k = _mm512_cvtepu8_epi32(codes);
      const __m512 g = _mm512_maskz_loadu_ps(mask16(lanes), dy + static_cast<size_t>(oy) * ow + ox);
      const __m512 e0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, zero), g);
      const __m512 o0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, one), g);
      const __m512 e1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, two), g);
      const __m512 o1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, three), g);
      const __mmask16 ka = mask16(2 * lanes), kb = mask16(2 * lanes > 16 ? 2 * lanes - 16 : 0);
      _mm512_mask_storeu_ps(d0 + 2 * ox, ka, _mm512_permutex2var_ps(e0, lo, o0));
      _mm512_mask_storeu_ps(d0 + 2 * ox + 16, kb, _mm512_permutex2var_ps(e0, hi, o0));
      _mm512_mask_storeu_ps(d1 + 2 * ox, ka, _mm512_permutex2var_ps(e1, lo, o1));
      _mm512_mask_storeu_ps(d1 + 2 * ox + 16, kb, _mm512_permutex2var_ps(e1, hi, o1));
    }
    if (w > 2 * ow) d0[w - 1] = d1[w - 1] = 0.0f;  // odd width: the dropped column
  }
  if (h > 2 * oh) std::memset(dx + static_cast<size_t>(h - 1) * w, 0, sizeof(float) * w);
}

// 16×16 tile of src (rows × cols ≤ 16 each, missing rows and columns read as zeros) transposed
// into dst, cols rows of `rows` lanes written; bias (rows values or null) added to every row.
inline void transpose_tile(const float* src, int rows, int cols, int ld_src, float* dst,
                           int ld_dst, const float* bias) {
  __m512 r[16], t[16];
  const __mmask16 kc = mask16(static_cast<size_t>(cols)), kr = mask16(static_cast<size_t>(rows));
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i)
    r[i] = i < rows ? _mm512_maskz_loadu_ps(kc, src + static_cast<size_t>(i) * ld_src) : _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + j + 4], 0x88);
      t[8 * i + j + 4] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + j + 4], 0xdd);
    }
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
  }
  if (bias != nullptr) {
    const __m512 b = _mm512_maskz_loadu_ps(kr, bias);
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) r[j] = _mm512_add_ps(r[j], b);
  }
#pragma GCC unroll 16
  for (int j = 0; j < 16; ++j)
    if (j < cols) _mm512_mask_storeu_ps(dst + static_cast<size_t>(j) * ld_dst, kr, r[j]);
}

void transpose(const float* src, int rows, int cols, int ld_src, float* dst, int ld_dst,
               const float* bias) {
  for (int i0 = 0; i0 < rows; i0 += 16)
    for (int j0 = 0; j0 < cols; j0 += 16)
      transpose_tile(src + static_cast<size_t>(i0) * ld_src + j0, std::min(16, rows - i0),
                     std::min(16, cols - j0), ld_src, dst + static_cast<size_t>(j0) * ld_dst + i0,
                     ld_dst, bias == nullptr ? nullptr : bias + i0);
}

}  // namespace avx

#pragma GCC diagnostic pop
#pragma GCC pop_options

#endif  // MD_CPU_SIMD_AVX512

}  // namespace mnist_dist::cpu_simd
