// BatchNormBase: the backend-independent half of BatchNorm (layers/batchnorm.h).
#include "layers/batchnorm.h"

#include <algorithm>

#include "comm/communicator.h"
#include "core/error.h"

namespace mnist_dist {

BatchNormBase::BatchNormBase(const BatchNormConfig& config)
    : Layer(LayerKind::kBatchNorm), cfg_(config) {}

bool BatchNormBase::sync_across_ranks(const Context& ctx) {
  return ctx.sync_bn && ctx.comm != nullptr && ctx.comm->size() > 1;
}

std::string BatchNormBase::describe() const { return "batchnorm " + std::to_string(cfg_.channels); }

Shape BatchNormBase::output_shape(const Shape& in) const {
  MD_CHECK(in.c == cfg_.channels, "batchnorm channels " + in.str());
  return in;
}

void BatchNormBase::declare(ParamArena& a) {
  gamma_ = a.declare(name() + "/weight", {cfg_.channels}, true);
  beta_ = a.declare(name() + "/bias", {cfg_.channels}, true);
  mean_ = a.declare(name() + "/running_mean", {cfg_.channels}, false);
  var_ = a.declare(name() + "/running_var", {cfg_.channels}, false);
}

void BatchNormBase::init(ParamArena& a, Rng&) {
  std::fill_n(a.host_param(gamma_), cfg_.channels, 1.0f);
  std::fill_n(a.host_param(beta_), cfg_.channels, 0.0f);
  std::fill_n(a.host_param(mean_), cfg_.channels, 0.0f);
  std::fill_n(a.host_param(var_), cfg_.channels, 1.0f);
}

}  // namespace mnist_dist
