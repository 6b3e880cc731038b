// 2-D convolution, stride 1, square kernel, 'same' or 'valid' padding, with bias.
// Kernel layout (O, I, KH, KW) as in PyTorch; activations NCHW.
#pragma once

#include "layers/layer.h"

namespace mnist_dist {

enum class Padding { kSame, kValid };

struct Conv2dConfig {
  int in_channels = 1;
  int out_channels = 1;
  int kernel = 5;
  Padding padding = Padding::kSame;
};

// Padding on each side: (k−1)/2 for 'same' (odd kernels), 0 for 'valid'.
inline int conv_pad(const Conv2dConfig& c) {
  return c.padding == Padding::kSame ? (c.kernel - 1) / 2 : 0;
}

LayerPtr make_conv2d(Backend backend, const Conv2dConfig& config);

}  // namespace mnist_dist
