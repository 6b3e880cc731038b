// Flat parameter arena: declaration, aligned layout and view lookup.
#include "model/param_arena.h"

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
  params_.assign(param_end_, 0.0f);
  grads_.assign(param_end_, 0.0f);
  state_.assign(state_end_, 0.0f);
  finalized_ = true;
}

float* ParamArena::param(int id) {
  const ParamInfo& p = infos_.at(id);
  return (p.trainable ? params_.data() : state_.data()) + p.offset;
}

float* ParamArena::grad(int id) {
  const ParamInfo& p = infos_.at(id);
  MD_CHECK(p.trainable, "gradient of non-trainable tensor " + p.name);
  return grads_.data() + p.offset;
}

size_t ParamArena::trainable_scalars() const {
  size_t n = 0;
  for (const auto& p : infos_) n += p.trainable ? p.count : 0;
  return n;
}

}  // namespace mnist_dist
