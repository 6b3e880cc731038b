// im2col / col2im for stride-1 square kernels with symmetric zero padding (CPU).
// col has shape (C·K·K, OH·OW): row (c, ky, kx), column (oy, ox).
#pragma once

#include <algorithm>

namespace mnist_dist {

inline void im2col(const float* x, int c, int h, int w, int k, int pad, int oh, int ow,
                   float* col) {
  for (int ci = 0; ci < c; ++ci)
    for (int ky = 0; ky < k; ++ky)
      for (int kx = 0; kx < k; ++kx) {
        float* row = col + ((ci * k + ky) * k + kx) * oh * ow;
        // Valid output columns for this kx: 0 <= ox + kx - pad < w.
        const int ox0 = std::max(0, pad - kx), ox1 = std::min(ow, w + pad - kx);
        for (int oy = 0; oy < oh; ++oy) {
          const int iy = oy + ky - pad;
          float* dst = row + oy * ow;
          if (iy < 0 || iy >= h || ox0 >= ox1) {
            std::fill_n(dst, ow, 0.0f);
            continue;
          }
          const float* src = x + (ci * h + iy) * w + (kx - pad);
          std::fill_n(dst, ox0, 0.0f);
          std::copy(src + ox0, src + ox1, dst + ox0);
          std::fill(dst + ox1, dst + ow, 0.0f);
        }
      }
}

// Adjoint of im2col: dx = Σ over kernel taps of dcol (dx is overwritten).
inline void col2im(const float* col, int c, int h, int w, int k, int pad, int oh, int ow,
                   float* dx) {
  std::fill_n(dx, c * h * w, 0.0f);
  for (int ci = 0; ci < c; ++ci)
    for (int ky = 0; ky < k; ++ky)
      for (int kx = 0; kx < k; ++kx) {
        const float* row = col + ((ci * k + ky) * k + kx) * oh * ow;
        const int ox0 = std::max(0, pad - kx), ox1 = std::min(ow, w + pad - kx);
        for (int oy = 0; oy < oh; ++oy) {
          const int iy = oy + ky - pad;
          if (iy < 0 || iy >= h || ox0 >= ox1) continue;
          float* dst = dx + (ci * h + iy) * w + (kx - pad);
          const float* src = row + oy * ow;
          for (int ox = ox0; ox < ox1; ++ox) dst[ox] += src[ox];
        }
      }
}

}  // namespace mnist_dist
