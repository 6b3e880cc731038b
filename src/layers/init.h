// Keras-default initialisers: Glorot-uniform kernels (zero biases are set by the layers).
#pragma once

#include <cmath>
#include <cstddef>

#include "core/rng.h"

namespace mnist_dist {

// U(−limit, limit) with limit = √(6 / (fan_in + fan_out)).
inline void glorot_uniform(float* w, size_t count, int fan_in, int fan_out, Rng& rng) {
  const double limit = std::sqrt(6.0 / (fan_in + fan_out));
  for (size_t i = 0; i < count; ++i) w[i] = static_cast<float>((2.0 * rng.uniform() - 1.0) * limit);
}

}  // namespace mnist_dist
