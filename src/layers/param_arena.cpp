// Flat parameter arena: declaration, aligned layout and view lookup.
#include "layers/param_arena.h"

#include <cstdint>
#include <cstring>

#include "core/error.h"

namespace mnist_dist {

int ParamArena::declare(const std::string& name, std::vector<int> shape, bool trainable) {
  MD_CHECK(!finalized_, "declare after finalize: " + name);
  size_t count = 1;
  for (int d : shape) count *= static_cast<size_t>(d);
  ParamInfo p{name, std::move(shape), 0, count, trainable};
  size_t& end = trainable ? param_end_ : state_end_;
  p.offset = end;
  end += (count + kAlign - 1) / kAlign * kAlign;
  infos_.push_back(std::move(p));
  return static_cast<int>(infos_.size()) - 1;
}

void ParamArena::finalize() {
  MD_CHECK(!finalized_, "finalize called twice");
  // On the CPU the "device" buffers are the live values and the host copies are unused.
  if (backend_ == Backend::kCuda) {
    params_ = Buffer<float>(Backend::kCpu, param_end_);
    state_ = Buffer<float>(Backend::kCpu, state_end_);
  }
  d_params_ = Buffer<float>(backend_, param_end_);
  d_grads_ = Buffer<float>(backend_, param_end_);
  d_state_ = Buffer<float>(backend_, state_end_);
  finalized_ = true;
}

float* ParamArena::param(int id) {
  const ParamInfo& p = infos_.at(id);
  return (p.trainable ? params() : state()) + p.offset;
}

float* ParamArena::grad(int id) {
  const ParamInfo& p = infos_.at(id);
  MD_CHECK(p.trainable, "gradient of non-trainable tensor " + p.name);
  return grads() + p.offset;
}

void ParamArena::attach(float* external_params, float* external_grads) {
  MD_CHECK(finalized_ && backend_ == Backend::kCpu, "attach needs a finalized CPU arena");
  for (const float* p : {external_params, external_grads})
    MD_CHECK(reinterpret_cast<uintptr_t>(p) % (kAlign * sizeof(float)) == 0, "attach: memory not 64-byte aligned");
  ext_params_ = external_params;
  ext_grads_ = external_grads;
}

void ParamArena::detach() {
  if (ext_params_ != nullptr) std::memcpy(d_params_.data(), ext_params_, param_end_ * sizeof(float));
  if (ext_grads_ != nullptr) std::memcpy(d_grads_.data(), ext_grads_, param_end_ * sizeof(float));
  ext_params_ = ext_grads_ = nullptr;
}

float* ParamArena::host_param(int id) {
  const ParamInfo& p = infos_.at(id);
  return (p.trainable ? host_params() : host_state()) + p.offset;
}

void ParamArena::sync_to_device() {
  if (backend_ == Backend::kCpu) return;
  d_params_.upload(params_.data(), param_end_);
  d_state_.upload(state_.data(), state_end_);
}

void ParamArena::sync_to_host() {
  if (backend_ == Backend::kCpu) return;
  d_params_.download(params_.data(), param_end_);
  d_state_.download(state_.data(), state_end_);
}

size_t ParamArena::trainable_scalars() const {
  size_t n = 0;
  for (const auto& p : infos_) n += p.trainable ? p.count : 0;
  return n;
}

}  // namespace mnist_dist
