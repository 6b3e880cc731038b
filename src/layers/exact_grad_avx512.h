// AVX-512 (F + DQ) paths of layers/exact_grad.h, compiled for AVX-512 in exact_grad_avx512.cpp
// only; the same bits as the portable loops in exact_grad.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mnist_dist::exact {

// The CPU has AVX-512F and DQ (and this build compiled the path).
bool avx512_path_available();
void unfold_avx512(const int64_t* acc, size_t n, float* out);
// out[i] = from_fixed(Σ_k bufs[k][i]) for i < n (bufs already offset).
void unfold_sum_avx512(const int64_t* const* bufs, int nbufs, size_t offset, size_t n, float* out);
// max |v[i]| over i < n (at least `floor`), and whether any v[i] is not finite.
float max_abs_avx512(const float* v, size_t n, float floor, bool* not_finite);
// dw, or with dwf (then dw and add are unused) the sums rounded back to float into dwf.
void dense_weight_grad_avx512(const float* dyt, const float* x, int n, int in, int chunk, int r0, int r1,
                              bool add, int64_t* dw, float* dwf = nullptr);

}  // namespace mnist_dist::exact
