// CPU fusion of BatchNorm → ReLU → 2×2 max-pooling (both blocks of the seed net). Model runs
// the three layers as one sweep per (sample, channel) plane while the plane is in L1: the
// normalised and rectified planes live in per-thread scratch, only the pooled output and its
// arg-max reach memory (backward: only dL/dx). The per-element math and
// every sum's order are those of the three layers run one after the other, so the results are
// bit-identical (tests/unit/test_model.cpp). Context::fuse_layers turns it on or off (its
// default: on unless MNIST_DIST_NO_FUSION=1, core/kernel_choice.h). Layers offer these
// abilities through Layer::fused_relu_pool() / Layer::pool_argmax().
#pragma once

#include <cstdint>

#include "core/context.h"
#include "core/tensor.h"
#include "layers/param_arena.h"

namespace mnist_dist {

// Implemented by the CPU BatchNorm.
class FusedReluPool {
 public:
  virtual ~FusedReluPool() = default;
  // y_pool = maxpool2(relu(this(x))); arg: the pool's arg-max buffer for y_pool.
  virtual void forward_relu_pool(Context& ctx, ParamArena& arena, const Tensor& x, Tensor& y_pool,
                                 uint8_t* arg, bool training) = 0;
  // From dL/dy_pool and the forward's y_pool / arg: this layer's parameter gradients and dL/dx
  // (skipped when dx.data is null). dL/d(this layer's output) is rebuilt plane by plane in
  // scratch where needed, never stored.
  virtual void backward_relu_pool(Context& ctx, ParamArena& arena, const Tensor& x, const Tensor& y_pool,
                                  const uint8_t* arg, const Tensor& dy_pool, Tensor& dx) = 0;
};

// Implemented by the CPU max-pooling layer: its arg-max buffer (N, C, OH, OW).
class PoolArgmax {
 public:
  virtual ~PoolArgmax() = default;
  virtual uint8_t* argmax() = 0;
};

}  // namespace mnist_dist
