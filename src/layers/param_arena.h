// The flat parameter arena (DESIGN.md contract 3): trainable parameters and their gradients in
// two buffers with identical offsets, plus a third buffer for non-trainable state (BatchNorm
// running statistics). Layers hold {offset, count} views; optimizer moments use the same offsets.
// The buffers live in the backend's memory (param(), grads(), ...); host copies of parameters
// and state (host_*()) serve initialisation, files and cross-rank checks, synchronised
// explicitly. On the CPU backend both are the same memory and the syncs do nothing.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "cuda/buffer.h"

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

  explicit ParamArena(Backend backend = Backend::kCpu) : backend_(backend) {}
  Backend backend() const { return backend_; }

  // Declares a tensor; returns its id. Only before finalize().
  int declare(const std::string& name, std::vector<int> shape, bool trainable);
  // Allocates the buffers (zero-filled); views become valid.
  void finalize();

  const ParamInfo& info(int id) const { return infos_[id]; }
  const std::vector<ParamInfo>& infos() const { return infos_; }
  // Backend memory.
  float* param(int id);   // trainable: the value; non-trainable: the state value
  float* grad(int id);    // trainable only
  float* params() { return ext_params_ != nullptr ? ext_params_ : d_params_.data(); }
  float* grads() { return ext_grads_ != nullptr ? ext_grads_ : d_grads_.data(); }
  // CPU backend: the parameters / gradients live in `external` (param_count() floats, 64-byte
  // aligned, e.g. a shared-memory window; its contents are the caller's) until detach(), which
  // copies them back into the arena's own buffers.
  void attach(float* external_params, float* external_grads);
  void detach();
  float* state() { return d_state_.data(); }
  const float* params() const { return ext_params_ != nullptr ? ext_params_ : d_params_.data(); }
  const float* state() const { return d_state_.data(); }

  // Host copies (the same memory on the CPU backend).
  float* host_param(int id);
  float* host_params() { return backend_ == Backend::kCpu ? params() : params_.data(); }
  float* host_state() { return host(state_, d_state_); }
  const float* host_params() const { return const_cast<ParamArena*>(this)->host_params(); }
  const float* host_state() const { return const_cast<ParamArena*>(this)->host_state(); }
  void sync_to_device();  // host parameters and state → backend memory
  void sync_to_host();    // backend parameters and state → host copies
  size_t param_count() const { return param_end_; }  // including alignment padding
  size_t state_count() const { return state_end_; }
  size_t trainable_scalars() const;                       // without padding
  bool finalized() const { return finalized_; }

 private:
  float* host(Buffer<float>& host_copy, Buffer<float>& live) {
    return backend_ == Backend::kCpu ? live.data() : host_copy.data();
  }

  std::vector<ParamInfo> infos_;
  Backend backend_;
  Buffer<float> params_, state_;              // host copies (CPU: also the live values)
  Buffer<float> d_params_, d_grads_, d_state_;  // backend memory (CPU: aliases, see finalize)
  float* ext_params_ = nullptr;
  float* ext_grads_ = nullptr;
  size_t param_end_ = 0, state_end_ = 0;
  bool finalized_ = false;
};

}  // namespace mnist_dist
