// Inverted dropout (--dropout P): in training each unit of each sample is kept with probability
// 1 − P and scaled by 1 / (1 − P), else zeroed; in evaluation the identity. The mask is a pure
// function of the context's noise key, the sample's row in the global batch and the unit
// (layers/dropout_mask.h), so it does not depend on the world size, threads or backend; backward
// recomputes it from what the forward used. No parameters; not exported (the identity at
// inference).
#pragma once

#include <cstdint>
#include <string>

#include "layers/layer.h"

namespace mnist_dist {

class DropoutBase : public Layer {
 public:
  explicit DropoutBase(const DropoutConfig& cfg);
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override { return in; }
  const DropoutConfig& config() const { return cfg_; }
  float scale() const { return 1.0f / (1.0f - cfg_.rate); }

 protected:
  // What forward used, for backward: whether it dropped (training), its key and first row.
  struct Pass {
    bool dropped = false;
    uint64_t key = 0, first_row = 0;
  };
  Pass begin_forward(const Context& ctx, bool training);
  const Pass& last_pass() const { return pass_; }

  DropoutConfig cfg_;
  uint64_t keep_below_;

 private:
  Pass pass_;
};

LayerPtr make_dropout(Backend backend, const DropoutConfig& cfg);

}  // namespace mnist_dist
