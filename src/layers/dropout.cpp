// Dropout's backend-independent part: settings, summary line, the pass's key.
#include "layers/dropout.h"

#include <cstdio>

#include "core/error.h"
#include "layers/dropout_mask.h"

namespace mnist_dist {

DropoutBase::DropoutBase(const DropoutConfig& cfg)
    : Layer(LayerKind::kDropout), cfg_(cfg), keep_below_(dropout_keep_below(cfg.rate)) {
  MD_CHECK(cfg.rate >= 0.0f && cfg.rate < 1.0f, "dropout rate " + std::to_string(cfg.rate) + " outside [0, 1)");
}

std::string DropoutBase::describe() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "dropout %.3g (training only)", static_cast<double>(cfg_.rate));
  return buf;
}

DropoutBase::Pass DropoutBase::begin_forward(const Context& ctx, bool training) {
  pass_.dropped = training && cfg_.rate > 0.0f;
  pass_.key = dropout_mix(ctx.noise_key ^ dropout_mix(cfg_.salt + 0xD1B54A32D192ED03ull));
  pass_.first_row = ctx.noise_first_row;
  return pass_;
}

}  // namespace mnist_dist
