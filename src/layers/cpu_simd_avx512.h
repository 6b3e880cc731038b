// The AVX-512 loops behind cpu_simd.h (cpu_simd_avx512.cpp, compiled for AVX-512 there only):
// for cpu_simd.cpp's dispatch, which calls them only when asked to. Same contracts as cpu_simd.h.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__)
#define MD_CPU_SIMD_AVX512 1
#endif

#if MD_CPU_SIMD_AVX512
namespace mnist_dist::cpu_simd::avx {

void sum_sumsq(const float* x, size_t n, double& s1, double& s2);
void sum_dy_dyxhat(const float* dy, const float* x, size_t n, float mean, float invstd,
                   double& sdy, double& sdyx);
void bn_normalize(const float* x, size_t n, float mean, float invstd, float gamma, float beta,
                  float* y);
void bn_backward_dx(const float* dy, const float* x, size_t n, float mean, float invstd,
                    float gamma_invstd, float inv_m, float sum_dy, float sum_dy_xhat, float* dx);
void relu_forward(const float* x, size_t n, float* y);
void relu_backward(const float* y, const float* dy, size_t n, float* dx);
void maxpool2_forward(const float* x, int h, int w, float* y, uint8_t* arg);
void maxpool2_backward(const float* dy, const uint8_t* arg, int h, int w, float* dx);
void transpose(const float* src, int rows, int cols, int ld_src, float* dst, int ld_dst,
               const float* bias);

}  // namespace mnist_dist::cpu_simd::avx
#endif
