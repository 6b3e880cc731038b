// What the CPU layers read of the context: the OpenMP team of their parallel regions
// (num_threads(team_size(ctx))) and whether their loops take the AVX-512 paths.
#pragma once

#include <omp.h>

#include <algorithm>

#include "core/context.h"
#include "core/kernel_choice.h"

namespace mnist_dist {

// ctx.threads, or OpenMP's default at the call when it is 0 (core/context.h).
inline int team_size(const Context& ctx) {
  return ctx.threads > 0 ? ctx.threads : std::max(1, omp_get_max_threads());
}

// ctx.use_avx512 where the CPU has AVX-512F (never an illegal instruction, whatever the field).
inline bool use_avx512(const Context& ctx) { return ctx.use_avx512 && cpu_has_avx512(); }

}  // namespace mnist_dist
