// Direct convolution kernels (see conv2d_direct.h) written with AVX-512 intrinsics and compiled
// for AVX-512 in this file only; conv2d_cpu.cpp calls them only when use_avx512(ctx) (the CPU
// has AVX-512F and the context asks for it), so the binary still runs (through the im2col +
// SGEMM path) on CPUs without AVX-512.
//
// Forward: one vector = up to 16 output columns of one output row; a register block holds
// OB output channels × R output rows × V vectors (≤ 24 accumulators) and walks the C·K·K taps,
// each tap one broadcast weight per channel and one unaligned load per row vector.
// Weight gradient: for one (input channel, kernel row) a block holds OB output channels × K
// kernel columns, summed over the rows of a chunk of samples, then reduced across lanes.
#include "layers/conv2d_direct.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#define MD_CONV_DIRECT 1
#include <immintrin.h>
#endif

namespace mnist_dist::conv_direct {

namespace {
constexpr int kSlack = 64;  // floats after each padded input (loads run up to 16·V + K past a row)

int round16(int n) { return (n + 15) / 16 * 16; }
}  // namespace

size_t Geom::padded_floats() const {
  return static_cast<size_t>(round16(c * hp * wp + kSlack));
}

Geom make_geom(int c, int h, int w, int o, int k, int pad) {
  Geom g;
  g.c = c;
  g.h = h;
  g.w = w;
  g.o = o;
  g.k = k;
  g.pad = pad;
  g.oh = h + 2 * pad - k + 1;
  g.ow = w + 2 * pad - k + 1;
  g.hp = h + 2 * pad;
  g.wp = w + 2 * pad;
  return g;
}

Geom backward_data_geom(const Geom& g) {
  return make_geom(g.o, g.oh, g.ow, g.c, g.k, g.k - 1 - g.pad);
}

#if MD_CONV_DIRECT
namespace {
void pad_input_avx512(const Geom& g, const float* x, float* xpad);
}
#endif

void pad_input(const Geom& g, const float* x, float* xpad, bool avx512) {
#if MD_CONV_DIRECT
  if (avx512) return pad_input_avx512(g, x, xpad);
#else
  (void)avx512;
#endif
  for (int ci = 0; ci < g.c; ++ci)
    for (int iy = 0; iy < g.h; ++iy)
      std::memcpy(xpad + (static_cast<size_t>(ci) * g.hp + iy + g.pad) * g.wp + g.pad,
                  x + (static_cast<size_t>(ci) * g.h + iy) * g.w, sizeof(float) * g.w);
}

void pack_forward(const Geom& g, const float* w, float* wt) {
  const int kk = g.k * g.k;
  for (int oi = 0; oi < g.o; ++oi)
    for (int ci = 0; ci < g.c; ++ci)
      for (int t = 0; t < kk; ++t)
        wt[(static_cast<size_t>(ci) * kk + t) * g.o + oi] = w[(static_cast<size_t>(oi) * g.c + ci) * kk + t];
}

void pack_backward_data(const Geom& g, const float* w, float* wt) {
  // The full convolution reads dy (g.o channels) and writes dx (g.c channels):
  // wt[(o·K + ky)·K + kx][c] = w[o][c][K−1−ky][K−1−kx].
  const int k = g.k, kk = k * k;
  for (int oi = 0; oi < g.o; ++oi)
    for (int ci = 0; ci < g.c; ++ci)
      for (int ky = 0; ky < k; ++ky)
        for (int kx = 0; kx < k; ++kx)
          wt[((static_cast<size_t>(oi) * k + ky) * k + kx) * g.c + ci] =
              w[(static_cast<size_t>(oi) * g.c + ci) * kk + (k - 1 - ky) * k + (k - 1 - kx)];
}

#if MD_CONV_DIRECT

#pragma GCC push_options
#pragma GCC target("avx512f,fma")
// GCC 12's _mm512_reduce_add_ps self-initialises an undefined vector (_mm256_undefined_pd):
// a known false -Wuninitialized once inlined here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

inline __mmask16 tail_mask(int lanes) {
  return lanes >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << lanes) - 1u);
}

// OB output channels × R output rows × V 16-wide vectors, starting at channel o0, row oy0.
template <int OB, int R, int V>
void fwd_block(const Geom& g, const float* xpad, const float* wt, const float* bias, float* y,
               int o0, int oy0) {
  __m512 acc[OB][R][V];
#pragma GCC unroll 16
  for (int o = 0; o < OB; ++o) {
    const __m512 b = _mm512_set1_ps(bias != nullptr ? bias[o0 + o] : 0.0f);
#pragma GCC unroll 4
    for (int j = 0; j < R; ++j)
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[o][j][v] = b;
  }
  const int k = g.k, on = g.o, wp = g.wp;
  // Kernel rows whose R input rows all lie in the zero padding contribute nothing: skipped
  // (the 'full' convolution of the input gradient has K−1 such rows at each edge).
  const int ky_lo = g.pad - oy0 - (R - 1) > 0 ? g.pad - oy0 - (R - 1) : 0;
  const int ky_hi = g.pad + g.h - oy0 < k ? g.pad + g.h - oy0 : k;
  for (int ci = 0; ci < g.c; ++ci)
    for (int ky = ky_lo; ky < ky_hi; ++ky) {
      const float* xrow = xpad + (static_cast<size_t>(ci) * g.hp + oy0 + ky) * wp;
      const float* wrow = wt + (static_cast<size_t>(ci) * k + ky) * k * on + o0;
      for (int kx = 0; kx < k; ++kx) {
        __m512 xv[R][V];
#pragma GCC unroll 4
        for (int j = 0; j < R; ++j)
#pragma GCC unroll 2
          for (int v = 0; v < V; ++v) xv[j][v] = _mm512_loadu_ps(xrow + j * wp + kx + 16 * v);
        const float* wk = wrow + kx * on;
#pragma GCC unroll 16
        for (int o = 0; o < OB; ++o) {
          const __m512 wv = _mm512_set1_ps(wk[o]);
#pragma GCC unroll 4
          for (int j = 0; j < R; ++j)
#pragma GCC unroll 2
            for (int v = 0; v < V; ++v) acc[o][j][v] = _mm512_fmadd_ps(wv, xv[j][v], acc[o][j][v]);
        }
      }
    }
  const size_t plane = static_cast<size_t>(g.oh) * g.ow;
#pragma GCC unroll 16
  for (int o = 0; o < OB; ++o)
#pragma GCC unroll 4
    for (int j = 0; j < R; ++j)
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v)
        _mm512_mask_storeu_ps(y + (o0 + o) * plane + static_cast<size_t>(oy0 + j) * g.ow + 16 * v,
                              tail_mask(g.ow - 16 * v), acc[o][j][v]);
}

using FwdFn = void (*)(const Geom&, const float*, const float*, const float*, float*, int, int);

struct FwdPlan {
  int ob = 1, rmax = 1;
  FwdFn fn[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};  // fn[r]: r output rows at a time
};

template <int OB, int V, int RMAX>
FwdPlan make_fwd_plan() {
  FwdPlan p;
  p.ob = OB;
  p.rmax = RMAX;
  p.fn[1] = &fwd_block<OB, 1, V>;
  if constexpr (RMAX >= 2) p.fn[2] = &fwd_block<OB, 2, V>;
  if constexpr (RMAX >= 3) p.fn[3] = &fwd_block<OB, 3, V>;
  if constexpr (RMAX >= 4) p.fn[4] = &fwd_block<OB, 4, V>;
  return p;
}

// Largest channel block ≤ n (from the instantiated sizes) for V vectors per row; rows in blocks
// of up to RMAX with OB·RMAX·V ≤ 24 accumulators.
template <int V>
FwdPlan fwd_plan(int n) {
  if constexpr (V == 1) {
    if (n >= 16) return make_fwd_plan<16, 1, 1>();
    if (n >= 12) return make_fwd_plan<12, 1, 2>();
    if (n >= 8) return make_fwd_plan<8, 1, 3>();
    if (n >= 6) return make_fwd_plan<6, 1, 4>();
    if (n >= 4) return make_fwd_plan<4, 1, 4>();
    if (n >= 3) return make_fwd_plan<3, 1, 4>();
    if (n >= 2) return make_fwd_plan<2, 1, 4>();
    return make_fwd_plan<1, 1, 4>();
  } else {
    if (n >= 12) return make_fwd_plan<12, 2, 1>();
    if (n >= 8) return make_fwd_plan<8, 2, 1>();
    if (n >= 6) return make_fwd_plan<6, 2, 2>();
    if (n >= 4) return make_fwd_plan<4, 2, 3>();
    if (n >= 3) return make_fwd_plan<3, 2, 4>();
    if (n >= 2) return make_fwd_plan<2, 2, 4>();
    return make_fwd_plan<1, 2, 4>();
  }
}

// pad_input's rows copied with masked vector moves: the rows are short (28 and 14 floats in the
// seed net), and a memcpy call per row (~50,000 per training step) measured 0.6 % slower.
void pad_input_avx512(const Geom& g, const float* x, float* xpad) {
  for (int ci = 0; ci < g.c; ++ci)
    for (int iy = 0; iy < g.h; ++iy) {
      const float* src = x + (static_cast<size_t>(ci) * g.h + iy) * g.w;
      float* dst = xpad + (static_cast<size_t>(ci) * g.hp + iy + g.pad) * g.wp + g.pad;
      for (int j = 0; j < g.w; j += 16) {
        const __mmask16 m = tail_mask(g.w - j);
        _mm512_mask_storeu_ps(dst + j, m, _mm512_maskz_loadu_ps(m, src + j));
      }
    }
}

// Weight gradient for channels [o0, o0+OB) × input channel ci × kernel row ky, K columns.
template <int OB, int K>
void wgrad_block(const Geom& g, const float* dy, const float* xpad, size_t xstride, int count,
                 int o0, int ci, int ky, float* dw) {
  __m512 acc[OB][K];
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o)
#pragma GCC unroll 5
    for (int kx = 0; kx < K; ++kx) acc[o][kx] = _mm512_setzero_ps();
  const size_t plane = static_cast<size_t>(g.oh) * g.ow;
  const size_t dy_sample = plane * g.o;
  const int vecs = (g.ow + 15) / 16;
  for (int n = 0; n < count; ++n) {
    const float* dyn = dy + n * dy_sample + o0 * plane;
    const float* xr = xpad + n * xstride + (static_cast<size_t>(ci) * g.hp + ky) * g.wp;
    for (int oy = 0; oy < g.oh; ++oy) {
      for (int v = 0; v < vecs; ++v) {
        const __mmask16 m = tail_mask(g.ow - 16 * v);
        const size_t at = static_cast<size_t>(oy) * g.ow + 16 * v;
        __m512 d[OB];
#pragma GCC unroll 8
        for (int o = 0; o < OB; ++o) d[o] = _mm512_maskz_loadu_ps(m, dyn + o * plane + at);
        const float* xv0 = xr + static_cast<size_t>(oy) * g.wp + 16 * v;
#pragma GCC unroll 5
        for (int kx = 0; kx < K; ++kx) {
          const __m512 xv = _mm512_loadu_ps(xv0 + kx);
#pragma GCC unroll 8
          for (int o = 0; o < OB; ++o) acc[o][kx] = _mm512_fmadd_ps(d[o], xv, acc[o][kx]);
        }
      }
    }
  }
  const int kk = K * K;
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o)
#pragma GCC unroll 5
    for (int kx = 0; kx < K; ++kx)
      dw[(static_cast<size_t>(o0 + o) * g.c + ci) * kk + ky * K + kx] += _mm512_reduce_add_ps(acc[o][kx]);
}

using WgradFn = void (*)(const Geom&, const float*, const float*, size_t, int, int, int, int, float*);

struct WgradPlan {
  int ob = 1;
  WgradFn fn = nullptr;
};

template <int K>
WgradPlan wgrad_plan(int n) {
#define MD_WG_CASE(OB) \
  if (n >= OB) return WgradPlan{OB, &wgrad_block<OB, K>};
  if constexpr (K == 3) {
    MD_WG_CASE(6)
  }
  MD_WG_CASE(4)
  MD_WG_CASE(3)
  MD_WG_CASE(2)
  MD_WG_CASE(1)
#undef MD_WG_CASE
  return WgradPlan{};
}

void forward_avx512(const Geom& g, const float* xpad, const float* wt, const float* bias, float* y) {
  const bool two = g.ow > 16;
  for (int o0 = 0; o0 < g.o;) {
    const FwdPlan p = two ? fwd_plan<2>(g.o - o0) : fwd_plan<1>(g.o - o0);
    int oy = 0;
    for (; oy + p.rmax <= g.oh; oy += p.rmax) p.fn[p.rmax](g, xpad, wt, bias, y, o0, oy);
    if (oy < g.oh) p.fn[g.oh - oy](g, xpad, wt, bias, y, o0, oy);
    o0 += p.ob;
  }
}

void weight_grad_avx512(const Geom& g, const float* dy, const float* xpad, size_t xstride,
                        int count, float* dw, float* db) {
  for (int ci = 0; ci < g.c; ++ci)
    for (int ky = 0; ky < g.k; ++ky)
      for (int o0 = 0; o0 < g.o;) {
        const WgradPlan p = g.k == 3 ? wgrad_plan<3>(g.o - o0) : wgrad_plan<5>(g.o - o0);
        p.fn(g, dy, xpad, xstride, count, o0, ci, ky, dw);
        o0 += p.ob;
      }
  // db (O) += Σ over samples and pixels of dy.
  const int plane = g.oh * g.ow;
  for (int n = 0; n < count; ++n)
    for (int o = 0; o < g.o; ++o) {
      const float* p = dy + (static_cast<size_t>(n) * g.o + o) * plane;
      __m512 s = _mm512_setzero_ps();
      int i = 0;
      for (; i + 16 <= plane; i += 16) s = _mm512_add_ps(s, _mm512_loadu_ps(p + i));
      s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tail_mask(plane - i), p + i));
      db[o] += _mm512_reduce_add_ps(s);
    }
}

}  // namespace

#pragma GCC diagnostic pop
#pragma GCC pop_options

bool supported(const Geom& g) {
  return (g.k == 3 || g.k == 5) && g.ow >= 1 && g.ow <= 32 && g.oh >= 1 &&
         g.pad >= 0 && g.pad <= g.k - 1;
}

void forward(const Geom& g, const float* xpad, const float* wt, const float* bias, float* y) {
  forward_avx512(g, xpad, wt, bias, y);
}

void weight_grad(const Geom& g, const float* dy, const float* xpad, size_t xpad_stride, int count,
                 float* dw, float* db) {
  weight_grad_avx512(g, dy, xpad, xpad_stride, count, dw, db);
}

#else  // not x86-64 / GCC: no direct kernels; conv2d_cpu.cpp uses im2col + SGEMM.

bool supported(const Geom&) { return false; }
void forward(const Geom&, const float*, const float*, const float*, float*) { std::abort(); }
void weight_grad(const Geom&, const float*, const float*, size_t, int, float*, float*) { std::abort(); }

#endif

}  // namespace mnist_dist::conv_direct
