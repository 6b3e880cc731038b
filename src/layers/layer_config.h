// What the model, fusion and export read of a layer: its kind (LayerKind) and the settings of
// the configurable layers (Conv2dConfig, BatchNormConfig, DenseConfig), backend-independent.
#pragma once

#include <cstdint>

namespace mnist_dist {

enum class LayerKind { kConv2d, kBatchNorm, kRelu, kMaxPool2, kFlatten, kDense, kDropout, kCustom };

// The kind's name as in model summaries and messages: "conv2d", "batchnorm", ...
inline const char* kind_name(LayerKind k) {
  switch (k) {
    case LayerKind::kConv2d: return "conv2d";
    case LayerKind::kBatchNorm: return "batchnorm";
    case LayerKind::kRelu: return "relu";
    case LayerKind::kMaxPool2: return "maxpool2";
    case LayerKind::kFlatten: return "flatten";
    case LayerKind::kDense: return "dense";
    case LayerKind::kDropout: return "dropout";
    case LayerKind::kCustom: break;
  }
  return "custom";
}

enum class Padding { kSame, kValid };

// 2-D convolution, stride 1, square kernel, with bias.
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

// BatchNorm over (N, H, W) per channel, Keras defaults.
struct BatchNormConfig {
  int channels = 1;
  float momentum = 0.99f;
  float epsilon = 1e-3f;
};

// Fully connected layer, W (out, in).
struct DenseConfig {
  int in_features = 1;
  int out_features = 1;
};

// Inverted dropout in training (kept units scaled by 1 / (1 − rate)), the identity in evaluation.
// salt tells the model's dropout layers apart (different masks at the same position).
struct DropoutConfig {
  float rate = 0.0f;
  uint64_t salt = 0;
};

}  // namespace mnist_dist
