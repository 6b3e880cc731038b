// DenseBase: the backend-independent half of the fully connected layer (layers/dense.h).
#include "layers/dense.h"

#include <algorithm>

#include "core/error.h"
#include "layers/init.h"

namespace mnist_dist {

DenseBase::DenseBase(const DenseConfig& config) : Layer(LayerKind::kDense), cfg_(config) {}

std::string DenseBase::describe() const {
  return "dense " + std::to_string(cfg_.in_features) + " -> " + std::to_string(cfg_.out_features);
}

Shape DenseBase::output_shape(const Shape& in) const {
  MD_CHECK(in.per_sample() == static_cast<size_t>(cfg_.in_features), "dense input " + in.str());
  return Shape{in.n, cfg_.out_features, 1, 1};
}

void DenseBase::declare(ParamArena& a) {
  w_ = a.declare(name() + "/weight", {cfg_.out_features, cfg_.in_features}, true);
  b_ = a.declare(name() + "/bias", {cfg_.out_features}, true);
}

void DenseBase::init(ParamArena& a, Rng& rng) {
  glorot_uniform(a.host_param(w_), a.info(w_).count, cfg_.in_features, cfg_.out_features, rng);
  std::fill_n(a.host_param(b_), cfg_.out_features, 0.0f);
}

}  // namespace mnist_dist
