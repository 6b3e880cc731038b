// The flat parameter arena (DESIGN.md contract 3): trainable parameters and their gradients in
// two buffers with identical offsets, plus a third buffer for non-trainable state (BatchNorm
// running statistics). Layers hold {offset, count} views; optimizer moments use the same offsets.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/aligned.h"

namespace mnist_dist {

struct ParamInfo {
  std::string name;          // "conv1/weight" — also the dataset name in saved models
  std::vector<int> shape;    // e.g. (O, I, KH, KW) for a convolution kernel
  size_t offset = 0;         // into params()/grads() (trainable) or state() (non-trainable)
  size_t count = 0;
  bool trainable = true;
};

class ParamArena {
 public:
  static constexpr size_t kAlign = 16;  // floats: 64-byte aligned views for SIMD

  // Declares a tensor; returns its id. Only before finalize().
  int declare(const std::string& name, std::vector<int> shape, bool trainable);
  // Allocates the buffers (zero-filled); views become valid.
  void finalize();

  const ParamInfo& info(int id) const { return infos_[id]; }
  const std::vector<ParamInfo>& infos() const { return infos_; }
  float* param(int id);   // trainable: the value; non-trainable: the state value
  float* grad(int id);    // trainable only

  float* params() { return params_.data(); }
  float* grads() { return grads_.data(); }
  float* state() { return state_.data(); }
  const float* params() const { return params_.data(); }
  const float* state() const { return state_.data(); }
  size_t param_count() const { return params_.size(); }  // including alignment padding
  size_t state_count() const { return state_.size(); }
  size_t trainable_scalars() const;                       // without padding
  bool finalized() const { return finalized_; }

 private:
  std::vector<ParamInfo> infos_;
  AlignedVector<float> params_, grads_, state_;
  size_t param_end_ = 0, state_end_ = 0;
  bool finalized_ = false;
};

}  // namespace mnist_dist
