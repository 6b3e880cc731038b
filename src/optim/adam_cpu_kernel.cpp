// adam_cpu_kernel.h. The portable loop is built for the baseline x86-64 of the build (SSE2:
// four lanes, and sqrt/div dominate: ~0.8 ms per step for the seed net's 1.72 M parameters on
// two Zen 4 cores); the AVX-512 loop does the same in ~0.4 ms, at the memory's pace.
#include "optim/adam_cpu_kernel.h"

#include <math.h>

#include <cstdint>

#include "core/kernel_choice.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define MD_ADAM_AVX512 1
#include <immintrin.h>
#endif

namespace mnist_dist::adam {
namespace {

float grad_at(const float* const* grads, int ngrads, long i) {
  float g = grads[0][i];
  for (int r = 1; r < ngrads; ++r) g += grads[r][i];
  return g;
}

void update_portable(float* params, float* m, float* v, const float* const* grads, int ngrads,
                     long begin, long end, const Coeffs& c) {
  if (ngrads == 1) {
    const float* g = grads[0];
#pragma omp simd
    for (long i = begin; i < end; ++i) update(params[i], m[i], v[i], g[i], c);
    return;
  }
  for (long i = begin; i < end; ++i) update(params[i], m[i], v[i], grad_at(grads, ngrads, i), c);
}

}  // namespace

#if MD_ADAM_AVX512
#pragma GCC push_options
#pragma GCC target("avx512f")
#pragma GCC optimize("fp-contract=off")  // mul and add apart, as in update() on the portable path
// GCC 12's masked-load intrinsics start from an undefined vector: a known false
// -Wmaybe-uninitialized once inlined (as in layers/cpu_simd_avx512.cpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

void update_avx512(float* params, float* m, float* v, const float* const* grads, int ngrads,
                   long begin, long end, const Coeffs& c, bool stream_params) {
  // Streaming stores need 64-byte alignment: i steps by 16 floats, so params + begin decides.
  const bool stream = stream_params && reinterpret_cast<uintptr_t>(params + begin) % 64 == 0;
  const __m512 b1 = _mm512_set1_ps(c.beta1), b1c = _mm512_set1_ps(1.0f - c.beta1);
  const __m512 b2 = _mm512_set1_ps(c.beta2), b2c = _mm512_set1_ps(1.0f - c.beta2);
  const __m512 lr = _mm512_set1_ps(c.lr_t), eps = _mm512_set1_ps(c.eps), decay = _mm512_set1_ps(c.decay);
  const bool decays = c.decay != 1.0f;
  for (long i = begin; i < end; i += 16) {
    const long left = end - i;
    const __mmask16 k = left >= 16 ? static_cast<__mmask16>(0xFFFF)
                                   : static_cast<__mmask16>((1u << left) - 1u);
    __m512 g = _mm512_maskz_loadu_ps(k, grads[0] + i);
    for (int r = 1; r < ngrads; ++r) g = _mm512_add_ps(g, _mm512_maskz_loadu_ps(k, grads[r] + i));
    // m ← β1 m + (1−β1) g;  v ← β2 v + ((1−β2) g) g;  θ ← θ − (lr_t m) / (√v + ε)
    const __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_maskz_loadu_ps(k, m + i)), _mm512_mul_ps(b1c, g));
    const __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_maskz_loadu_ps(k, v + i)),
                                    _mm512_mul_ps(_mm512_mul_ps(b2c, g), g));
    const __m512 step = _mm512_div_ps(_mm512_mul_ps(lr, mi), _mm512_add_ps(_mm512_sqrt_ps(vi), eps));
    _mm512_mask_storeu_ps(m + i, k, mi);
    _mm512_mask_storeu_ps(v + i, k, vi);
    __m512 p = _mm512_maskz_loadu_ps(k, params + i);
    if (decays) p = _mm512_mul_ps(p, decay);
    p = _mm512_sub_ps(p, step);
    if (stream && left >= 16)
      _mm512_stream_ps(params + i, p);
    else
      _mm512_mask_storeu_ps(params + i, k, p);
  }
  if (stream) _mm_sfence();  // visible to other cores before whatever this thread does next
}

}  // namespace

#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif  // MD_ADAM_AVX512

void update_range(float* params, float* m, float* v, const float* const* grads, int ngrads,
                  long begin, long end, const Coeffs& c, bool stream_params) {
#if MD_ADAM_AVX512
  if (kernels_from_env().use_avx512) return update_avx512(params, m, v, grads, ngrads, begin, end, c, stream_params);
#else
  (void)stream_params;
#endif
  update_portable(params, m, v, grads, ngrads, begin, end, c);
}

}  // namespace mnist_dist::adam
