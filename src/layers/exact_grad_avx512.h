// AVX-512 (F + DQ) paths of layers/exact_grad.h, compiled for AVX-512 in exact_grad_avx512.cpp
// only; the same bits as the portable loops in exact_grad.cpp, which also serve their tails.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mnist_dist::exact {

// The CPU has AVX-512F and DQ (and this build compiled the path).
bool avx512_path_available();
void unfold_and_clear_avx512(int64_t* acc, size_t n, float* out);
float dense_weight_grad_avx512(const float* dy, const float* x, int n, int out, int in, int chunk,
                               int r0, int r1, int64_t* dw);

// Portable: rows [r0, r1) × columns [i0, i1) of dense_weight_grad's weight part.
float dense_weight_block(const float* dy, const float* x, int n, int out, int in, int chunk,
                         int r0, int r1, int i0, int i1, int64_t* dw);

}  // namespace mnist_dist::exact
