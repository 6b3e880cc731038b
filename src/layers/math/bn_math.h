// Per-element BatchNorm math shared by the CPU loops and the CUDA kernels.
#pragma once

#include "core/hostdev.h"

namespace mnist_dist::bn {

// Normalised value x̂ = (x - mean) * invstd.
MD_HD float xhat(float x, float mean, float invstd) { return (x - mean) * invstd; }

// Forward output y = γ x̂ + β.
MD_HD float forward(float x, float mean, float invstd, float gamma, float beta) {
  return gamma * xhat(x, mean, invstd) + beta;
}

// Input gradient given the channel sums over the (global) batch of M elements:
// dx = γ·invstd/M · (M·dy − Σdy − x̂·Σ(dy·x̂)).
MD_HD float backward_dx(float dy, float xh, float gamma_invstd, float inv_m, float sum_dy,
                        float sum_dy_xhat) {
  return gamma_invstd * (dy - inv_m * sum_dy - xh * inv_m * sum_dy_xhat);
}

// Running statistics update (Keras: moving = momentum·moving + (1−momentum)·batch).
MD_HD float running_update(float running, float batch_value, float momentum) {
  return momentum * running + (1.0f - momentum) * batch_value;
}

}  // namespace mnist_dist::bn
