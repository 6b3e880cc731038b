// BatchNorm over (N, H, W) per channel, Keras defaults (momentum 0.99, epsilon 1e-3).
// Training: batch statistics, reduced over all ranks when ctx.sync_bn (SyncBatchNorm);
// the running variance uses the unbiased batch variance (as TF's fused kernel and PyTorch).
// Evaluation: running statistics. Parameters weight (γ), bias (β); state running_mean/var.
// BatchNormBase holds what both backends share (config, shapes, parameters, init);
// batchnorm_cpu.cpp and batchnorm_cuda.cu add forward, backward and their scratch.
#pragma once

#include "layers/layer.h"

namespace mnist_dist {

class BatchNormBase : public Layer {
 public:
  explicit BatchNormBase(const BatchNormConfig& config);

  const BatchNormConfig& config() const { return cfg_; }
  const BatchNormConfig* as_batchnorm() const override { return &cfg_; }
  std::string describe() const override;  // "batchnorm 6"
  Shape output_shape(const Shape& in) const override;  // the input's
  // "<name>/weight", "<name>/bias" (C, trainable); "<name>/running_mean", "<name>/running_var"
  // (C, state).
  void declare(ParamArena& a) override;
  // γ = 1, β = 0, running mean 0, running variance 1, in the arena's host copy.
  void init(ParamArena& a, Rng& rng) override;

  // Whether the batch statistics are all-reduced over the ranks: SyncBN with more than one
  // rank (a one-rank communicator, NCCL's included, is never called: its sum is the identity).
  static bool sync_across_ranks(const Context& ctx);

 protected:
  const BatchNormConfig cfg_;
  int gamma_ = -1, beta_ = -1, mean_ = -1, var_ = -1;  // arena ids
};

LayerPtr make_batchnorm(Backend backend, const BatchNormConfig& config);

}  // namespace mnist_dist
