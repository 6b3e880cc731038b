// The one layer interface (CONVENTIONS.md): forward(ctx, x, y) / backward(ctx, x, y, dy, dx),
// parameters declared into the flat arena, scratch reserved once for the largest batch.
// The backend is fixed when a layer is built (see layers/factory.cpp), never read from a global.
// Each layer type has one backend-independent base (Conv2dBase in conv2d.h, ...) holding its
// config, shapes, parameter declaration and initialisation; its CPU and CUDA classes add
// forward, backward and their own scratch. The model, fusion and export read a layer's kind
// and config through type() and the as_*() accessors, never through strings.
#pragma once

#include <memory>
#include <string>

#include "core/context.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "layers/layer_config.h"
#include "layers/param_arena.h"

namespace mnist_dist {

class FusedReluPool;  // layers/fusion.h
class PoolArgmax;

class Layer {
 public:
  virtual ~Layer() = default;
  explicit Layer(LayerKind type = LayerKind::kCustom) : type_(type) {}
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  LayerKind type() const { return type_; }
  virtual std::string kind() const { return kind_name(type_); }  // "conv2d", "batchnorm", ...
  virtual std::string describe() const = 0;  // one line for the model summary

  // The layer's settings when it is of that kind, else null.
  virtual const Conv2dConfig* as_conv2d() const { return nullptr; }
  virtual const BatchNormConfig* as_batchnorm() const { return nullptr; }
  virtual const DenseConfig* as_dense() const { return nullptr; }
  // Optional abilities of CPU layers (layers/fusion.h), else null.
  virtual FusedReluPool* fused_relu_pool() { return nullptr; }
  virtual PoolArgmax* pool_argmax() { return nullptr; }

  // Output shape for an input shape (batch dimension passed through).
  virtual Shape output_shape(const Shape& in) const = 0;
  // Declares parameters/state under "<name>/..." (before the arena is finalized).
  virtual void declare(ParamArena&) {}
  // Keras-default initialisation of the declared tensors (after finalize).
  virtual void init(ParamArena&, Rng&) {}
  // Allocates scratch for inputs of shape `in` with up to in.n samples. Called once.
  virtual void reserve(const Shape&) {}

  // y = f(x). `training` selects batch statistics (BatchNorm) and saving what backward needs.
  virtual void forward(Context& ctx, ParamArena& arena, const Tensor& x, Tensor& y,
                       bool training) = 0;
  // Given dL/dy, writes the parameter gradients (overwrites, not accumulates) into the
  // arena's gradient buffer and dL/dx into dx (skipped when dx.data == nullptr).
  virtual void backward(Context& ctx, ParamArena& arena, const Tensor& x, const Tensor& y,
                        const Tensor& dy, Tensor& dx) = 0;

 private:
  LayerKind type_;
  std::string name_;
};

using LayerPtr = std::unique_ptr<Layer>;

}  // namespace mnist_dist
