// The 2×2 max-pooling window shared by the CPU loops and the CUDA kernels.
#pragma once

#include <cstdint>

#include "core/hostdev.h"

namespace mnist_dist::pool {

// The maximum of the window whose rows start at r0 and r1 into best; returns which element
// won: 0 (0,0), 1 (0,1), 2 (1,0), 3 (1,1), scanned in that order with strict '>' so the first
// maximum wins on ties.
MD_HD uint8_t window_max(const float* r0, const float* r1, float& best) {
  best = r0[0];
  uint8_t k = 0;
  if (r0[1] > best) { best = r0[1]; k = 1; }
  if (r1[0] > best) { best = r1[0]; k = 2; }
  if (r1[1] > best) { best = r1[1]; k = 3; }
  return k;
}

}  // namespace mnist_dist::pool
