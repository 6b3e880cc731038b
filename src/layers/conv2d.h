// 2-D convolution, stride 1, square kernel, 'same' or 'valid' padding, with bias.
// Kernel layout (O, I, KH, KW) as in PyTorch; activations NCHW. Conv2dBase holds what both
// backends share (config, output shape, parameters, Glorot-uniform init); conv2d_cpu.cpp and
// conv2d_cuda.cu add forward, backward and their scratch.
#pragma once

#include "layers/layer.h"

namespace mnist_dist {

class Conv2dBase : public Layer {
 public:
  explicit Conv2dBase(const Conv2dConfig& config);

  const Conv2dConfig& config() const { return cfg_; }
  const Conv2dConfig* as_conv2d() const override { return &cfg_; }
  std::string describe() const override;  // "conv2d 6@5x5 same"
  Shape output_shape(const Shape& in) const override;
  // "<name>/weight" (O, I, K, K) and "<name>/bias" (O), trainable.
  void declare(ParamArena& a) override;
  // Glorot-uniform kernel, zero bias, in the arena's host copy (uploaded by the model).
  void init(ParamArena& a, Rng& rng) override;

 protected:
  const Conv2dConfig cfg_;
  const int pad_;          // conv_pad(cfg_)
  int w_ = -1, b_ = -1;    // arena ids of the kernel and the bias
};

LayerPtr make_conv2d(Backend backend, const Conv2dConfig& config);

}  // namespace mnist_dist
