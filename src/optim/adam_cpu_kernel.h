// The CPU Adam loop over a range of the arena: AVX-512 (16 elements per instruction, run-time
// CPU check as in layers/cpu_simd.h) or the portable loop. Both compute adam::update's
// operations in its order without contraction, so they give the same bits; the gradient is the
// sum of `ngrads` buffers added in buffer order ((g0 + g1) + g2 ...).
#pragma once

#include "optim/adam_math.h"

namespace mnist_dist::adam {

void update_range(float* params, float* m, float* v, const float* const* grads, int ngrads,
                  long begin, long end, const Coeffs& c);

}  // namespace mnist_dist::adam
