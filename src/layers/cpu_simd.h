// Vectorised inner loops of the CPU BatchNorm, ReLU and max-pooling layers: AVX-512 when the
// caller asks for it (first argument: use_avx512(ctx), layers/cpu_context.h, which is only true
// where the CPU has it), portable loops otherwise. Both give the same element-wise results;
// sums differ in order only.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mnist_dist::cpu_simd {

// s1 += Σ x[i], s2 += Σ x[i]², accumulated in double.
void sum_sumsq(bool avx512, const float* x, size_t n, double& s1, double& s2);

// sdy += Σ dy[i], sdyx += Σ dy[i]·x̂[i] with x̂ = (x − mean)·invstd, accumulated in double.
void sum_dy_dyxhat(bool avx512, const float* dy, const float* x, size_t n, float mean, float invstd,
                   double& sdy, double& sdyx);

// y[i] = γ·((x[i] − mean)·invstd) + β  (bn::forward).
void bn_normalize(bool avx512, const float* x, size_t n, float mean, float invstd, float gamma, float beta,
                  float* y);

// dx[i] = bn::backward_dx(dy[i], (x[i] − mean)·invstd, γ·invstd, 1/M, Σdy, Σdy·x̂).
void bn_backward_dx(bool avx512, const float* dy, const float* x, size_t n, float mean, float invstd,
                    float gamma_invstd, float inv_m, float sum_dy, float sum_dy_xhat, float* dx);

// y[i] = max(x[i], 0) (x[i] > 0 ? x[i] : 0: −0 and NaN give 0).
void relu_forward(bool avx512, const float* x, size_t n, float* y);

// dx[i] = y[i] > 0 ? dy[i] : 0.
void relu_backward(bool avx512, const float* y, const float* dy, size_t n, float* dx);

// 2×2 / stride-2 max-pooling of one plane (h, w) → (h/2, w/2); arg[i] = which window element
// won (0 (0,0), 1 (0,1), 2 (1,0), 3 (1,1)); strict '>' in that order keeps the first maximum.
void maxpool2_forward(bool avx512, const float* x, int h, int w, float* y, uint8_t* arg);

// dx (h, w) = dy routed to the winning element of each window, zero elsewhere (overwritten).
void maxpool2_backward(bool avx512, const float* dy, const uint8_t* arg, int h, int w, float* dx);

// dst (cols × rows, leading dimension ld_dst) = src (rows × cols, leading dimension ld_src)ᵀ,
// plus bias[i] on dst's column i (src's row i) when bias is not null. 16×16 tiles (AVX-512:
// in registers). Every element is one copy or one float addition: both paths give the same bits.
void transpose(bool avx512, const float* src, int rows, int cols, int ld_src, float* dst,
               int ld_dst, const float* bias);
// The same with the default choice (kernels_from_env(), core/kernel_choice.h); for tests.
void transpose(const float* src, int rows, int cols, int ld_src, float* dst, int ld_dst,
               const float* bias);

}  // namespace mnist_dist::cpu_simd
