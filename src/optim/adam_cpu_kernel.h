// The CPU Adam loop over a range of the arena: AVX-512 (16 elements per instruction, run-time
// CPU check as in layers/cpu_simd.h) or the portable loop. Both compute adam::update's
// operations in its order without contraction, so they give the same bits; the gradient is the
// sum of `ngrads` buffers added in buffer order ((g0 + g1) + g2 ...).
//
// stream_params: the AVX-512 loop writes the parameters with non-temporal stores (whole
// 64-byte lines, straight to memory; fenced before returning). For parameters that other
// cores read (OpenMP threads, the sharded exchange's ranks): an ordinary store must first
// invalidate their cached copies, which this VM does one line at a time when the host runs
// the two vCPUs on different CCDs (3.5 MB overwritten at ~2.5 GB/s instead of ~90); streaming
// stores ran at 16-28 GB/s in either placement (docs/performance.md). Values are unchanged.
#pragma once

#include "optim/adam_math.h"

namespace mnist_dist::adam {

void update_range(float* params, float* m, float* v, const float* const* grads, int ngrads,
                  long begin, long end, const Coeffs& c, bool stream_params = false);

}  // namespace mnist_dist::adam
