// Direct 2-D convolution kernels for small images (AVX-512, used when the caller's context asks
// for AVX-512 and the CPU has it: use_avx512(ctx), layers/cpu_context.h): forward,
// which also serves the input gradient as a 'full' convolution with flipped kernels, and the
// weight gradient. NCHW planes; stride 1; K×K kernels; zero padding through padded copies.
#pragma once

#include <cstddef>

namespace mnist_dist::conv_direct {

// One convolution: input (C, H, W) → output (O, OH, OW). Padded inputs are (C, HP, WP) with
// HP = H + 2·pad, WP = W + 2·pad, followed by `kSlack` zero floats (vector loads run past
// the last row); their borders are zero and are never written, so a buffer is zeroed once.
struct Geom {
  int c = 0, h = 0, w = 0;
  int o = 0, oh = 0, ow = 0;
  int k = 0, pad = 0;
  int hp = 0, wp = 0;
  size_t padded_floats() const;  // one padded input, slack included, rounded up to 16
};

Geom make_geom(int c, int h, int w, int o, int k, int pad);

// True when the shape has a kernel here (K = 3 or 5, OW ≤ 32) in this build (x86-64, GCC).
// The kernels need AVX-512: callers also check use_avx512(ctx).
bool supported(const Geom& g);

// Copies x (C, H, W) into the interior of xpad (C, HP, WP); with AVX-512 when avx512 is set.
void pad_input(const Geom& g, const float* x, float* xpad, bool avx512);

// Kernel (O, C, K, K) → the layout the forward kernel reads: (C, K, K, O).
void pack_forward(const Geom& g, const float* w, float* wt);
// Kernel (O, C, K, K) of g → the (O', K, K, C') layout of the 'full' convolution that maps
// dL/dy to dL/dx: w'[o][ky][kx][c] = w[o][c][K−1−ky][K−1−kx], o and c swapped in its geometry.
void pack_backward_data(const Geom& g, const float* w, float* wt);
// Geometry of that 'full' convolution: input (O, OH, OW) padded by K−1−pad → output (C, H, W).
Geom backward_data_geom(const Geom& g);

// y (O, OH, OW) = xpad ⋆ w + bias for one sample; wt from pack_forward; bias may be null.
void forward(const Geom& g, const float* xpad, const float* wt, const float* bias, float* y);

// dw (O, C, K, K) += Σ over `count` samples of dy_n ⋆ xpad_n; dy: (count, O, OH, OW)
// contiguous, xpad: `count` padded inputs `xpad_stride` floats apart. db (O) += Σ dy_n.
void weight_grad(const Geom& g, const float* dy, const float* xpad, size_t xpad_stride, int count,
                 float* dw, float* db);

}  // namespace mnist_dist::conv_direct
