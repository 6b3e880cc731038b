// Shape-only and element-wise layers: ReLU, 2×2 max-pooling (stride 2, 'valid': odd edges
// dropped, first maximum wins on ties), Flatten (NCHW → (N, C·H·W, 1, 1)). Their bases hold
// kind, summary line and output shape; the *_cpu.cpp / *_cuda.cu classes forward and backward.
#pragma once

#include "layers/layer.h"

namespace mnist_dist {

class ReluBase : public Layer {
 public:
  ReluBase() : Layer(LayerKind::kRelu) {}
  std::string describe() const override { return "relu"; }
  Shape output_shape(const Shape& in) const override { return in; }
};

class MaxPool2Base : public Layer {
 public:
  MaxPool2Base() : Layer(LayerKind::kMaxPool2) {}
  std::string describe() const override { return "maxpool 2x2"; }
  Shape output_shape(const Shape& in) const override;  // (N, C, H/2, W/2)
};

class FlattenBase : public Layer {
 public:
  FlattenBase() : Layer(LayerKind::kFlatten) {}
  std::string describe() const override { return "flatten"; }
  Shape output_shape(const Shape& in) const override;  // (N, C·H·W, 1, 1)
};

LayerPtr make_relu(Backend backend);
LayerPtr make_maxpool2(Backend backend);
LayerPtr make_flatten(Backend backend);

}  // namespace mnist_dist
