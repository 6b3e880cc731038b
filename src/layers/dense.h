// Fully connected layer y = x·Wᵀ + b with W of shape (out, in) as in PyTorch's nn.Linear.
// DenseBase holds what both backends share (config, shapes, parameters, init); dense_cpu.cpp
// and dense_cuda.cu add forward, backward and their scratch.
#pragma once

#include "layers/layer.h"

namespace mnist_dist {

class DenseBase : public Layer {
 public:
  explicit DenseBase(const DenseConfig& config);

  const DenseConfig& config() const { return cfg_; }
  const DenseConfig* as_dense() const override { return &cfg_; }
  std::string describe() const override;  // "dense 588 -> 1200"
  Shape output_shape(const Shape& in) const override;  // (N, out, 1, 1)
  // "<name>/weight" (out, in) and "<name>/bias" (out), trainable.
  void declare(ParamArena& a) override;
  // Glorot-uniform weight, zero bias, in the arena's host copy (uploaded by the model).
  void init(ParamArena& a, Rng& rng) override;

 protected:
  const DenseConfig cfg_;
  int w_ = -1, b_ = -1;  // arena ids of the weight and the bias
};

LayerPtr make_dense(Backend backend, const DenseConfig& config);

}  // namespace mnist_dist
