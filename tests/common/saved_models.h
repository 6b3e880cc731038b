// Comparing two models saved by mnist_dist (--save): the relative L2 distance of their parameters
// and bit-for-bit equality of parameters and BN running statistics. For the e2e tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "io/model_io.h"
#include "model/model.h"

namespace mnist_dist::testing {

inline Model load_saved_model(const std::string& file, const std::string& model = "seed") {
  Model m(model, Backend::kCpu, {1, 1, 28, 28}, 10, 1);
  load_model(m, file);
  return m;
}

// ‖a − b‖ / ‖b‖ over the parameters.
inline double saved_rel_l2(const std::string& a, const std::string& b, const std::string& model = "seed") {
  const Model ma = load_saved_model(a, model), mb = load_saved_model(b, model);
  double d = 0.0, n = 0.0;
  for (size_t i = 0; i < ma.arena().param_count(); ++i) {
    const double x = ma.arena().params()[i], y = mb.arena().params()[i];
    d += (x - y) * (x - y);
    n += y * y;
  }
  return std::sqrt(d / std::max(n, 1e-300));
}

// Parameters and running statistics equal bit for bit.
inline bool saved_bitwise_equal(const std::string& a, const std::string& b, const std::string& model = "seed") {
  const Model ma = load_saved_model(a, model), mb = load_saved_model(b, model);
  return std::memcmp(ma.arena().params(), mb.arena().params(), ma.arena().param_count() * sizeof(float)) == 0 &&
         std::memcmp(ma.arena().state(), mb.arena().state(), ma.arena().state_count() * sizeof(float)) == 0;
}

}  // namespace mnist_dist::testing
